"""Train-step and inference images/s of ResNet-50 and DenseNet-121 at 224x224, mixed precision, on whatever accelerator
Keras' JAX or PyTorch backend sees (a script, not a test). Needs only keras, this package and the backend (no
TensorFlow, no data: one synthetic batch), so it runs on a GPU machine that has JAX or PyTorch and nothing else:

    KERAS_BACKEND=jax python benchmarks/accelerator.py                  # or KERAS_BACKEND=torch
    KERAS_BACKEND=torch python benchmarks/accelerator.py --batch 128 --policy mixed_bfloat16 --steps 20

Prints the device first, then one line per model: the median of ``--steps`` ``train_on_batch`` (SGD with momentum,
sparse cross-entropy) and ``predict_on_batch`` calls after ``--warmup`` unmeasured ones (XLA compilation, cuDNN
autotuning, first allocations), as images/s. The classifier runs in float32 under a mixed policy (the factories'
rule), so the loss is float32. JAX runs jitted (XLA); PyTorch eager, as Keras runs it by default.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def device_description(backend):
    """The accelerator the backend computes on, in words (its CPU when it sees none)."""
    if backend == "jax":
        import jax

        devices = jax.devices()
        return f"jax {jax.__version__}: {len(devices)} x {devices[0].device_kind} ({devices[0].platform})"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"torch {torch.__version__}: {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)} (cuda)"
        return f"torch {torch.__version__}: CPU only"
    return f"{backend}: see its own device listing"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet50,densenet121", help="registered names, comma-separated")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--policy", default="mixed_float16", help="Keras dtype policy (mixed_bfloat16, float32, ...)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    sys.path.insert(0, os.path.dirname(HERE))
    sys.path.insert(0, HERE)
    from _common import time_steps

    from keras_convnets import get_model
    from keras_convnets.models.backend import BACKEND, keras

    print(f"device: {device_description(BACKEND)}; policy {args.policy}; batch {args.batch}; "
          f"{args.size}x{args.size}", flush=True)
    keras.mixed_precision.set_global_policy(args.policy)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch, args.size, args.size, 3)).astype("float32")
    for name in args.models.split(","):
        model = get_model(name, input_shape=(args.size, args.size, 3))
        y = rng.integers(0, int(model.output.shape[-1]), size=(args.batch,))
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=BACKEND == "jax")
        seconds = time_steps(model, x, y, args.steps, args.warmup)
        print(json.dumps({"model": name, "backend": BACKEND, "policy": args.policy, "batch": args.batch,
                          "train_images_per_s": round(args.batch / seconds["train"], 1),
                          "inference_images_per_s": round(args.batch / seconds["inference"], 1)}), flush=True)


if __name__ == "__main__":
    main()
