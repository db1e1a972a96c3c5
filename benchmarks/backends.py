"""Train-step and inference images/s of our models on each Keras 3 backend, and the ratio to TensorFlow (a script, not
a test).

    python benchmarks/backends.py                                   # the five models, 2 rounds
    python benchmarks/backends.py --models resnet20,wrn_16_4 --batch 32 --steps 3 --rounds 2

Each round starts one process per backend (TensorFlow, JAX, PyTorch; their order alternates between rounds), which
times every model on the same in-memory batch (random images, the same seed everywhere): after ``--warmup``
unmeasured calls (tracing / XLA compilation, first allocations), the median of ``--steps`` ``train_on_batch`` and
``predict_on_batch`` calls. Per model and round, each backend's images/s is divided by TensorFlow's of the same round;
the table shows the median over rounds of those ratios, and of the images/s.

Modes: TensorFlow as this package's runtime runs it (oneDNN kernels on, ``TF_ENABLE_ONEDNN_OPTS=1``, no XLA: measured
faster on CPU, benchmarks/RESULTS.md), JAX jitted by XLA (Keras' only mode there worth timing), PyTorch eager (Keras'
default; ``torch.compile`` is ``jit_compile=True``). All float32.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BACKENDS = ("tensorflow", "jax", "torch")
#: model -> input size used when --size is not given (the ImageNet models at a small size: CPU minutes).
MODELS = {"resnet20": 32, "wrn_16_4": 32, "densenet_bc_100": 32, "resnet50": 64, "densenet121": 64}


def child(models, sizes, batch, steps, warmup):
    import numpy as np

    sys.path.insert(0, os.path.dirname(HERE))
    sys.path.insert(0, HERE)
    from _common import time_steps

    from keras_convnets import get_model
    from keras_convnets.models.backend import BACKEND, keras

    results = {}
    for name, size in zip(models, sizes):
        model = get_model(name, input_shape=(size, size, 3))
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=BACKEND == "jax",
                      loss=keras.losses.SparseCategoricalCrossentropy())
        rng = np.random.default_rng(0)
        x = rng.uniform(size=(batch, size, size, 3)).astype("float32")
        y = rng.integers(0, int(model.output.shape[-1]), size=(batch,))
        seconds = time_steps(model, x, y, steps, warmup)
        results[name] = {kind: batch / value for kind, value in seconds.items()}
    print("RESULT" + json.dumps({"backend": BACKEND, "images_per_s": results}))


def run_child(backend, args, models, sizes):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    if backend == "tensorflow":
        env.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--models", ",".join(models),
           "--sizes", ",".join(map(str, sizes)), "--batch", str(args.batch), "--steps", str(args.steps),
           "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode or "RESULT" not in out.stdout:
        sys.stderr.write(out.stderr[-4000:])
        raise RuntimeError(f"{backend} failed ({out.returncode})")
    return json.loads(out.stdout.split("RESULT", 1)[1])["images_per_s"]


def table(rounds, models):
    """Markdown rows: per model, kind and backend, the median images/s and the median per-round ratio to TF."""
    lines = ["| model | input | step | " + " | ".join(f"{b} img/s" for b in BACKENDS) + " | JAX / TF | PyTorch / TF |",
             "| --- | --- | --- | " + " | ".join("---:" for _ in BACKENDS) + " | ---: | ---: |"]
    for name, size in models:
        for kind in ("train", "inference"):
            speed = {b: statistics.median(r[b][name][kind] for r in rounds) for b in BACKENDS}
            ratio = {b: statistics.median(r[b][name][kind] / r["tensorflow"][name][kind] for r in rounds)
                     for b in ("jax", "torch")}
            lines.append(f"| {name} | {size}x{size} | {kind} | " + " | ".join(f"{speed[b]:.1f}" for b in BACKENDS)
                         + f" | {ratio['jax']:.2f}x | {ratio['torch']:.2f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="registered names, comma-separated")
    parser.add_argument("--size", type=int, help="one input size for every model (default: MODELS' per model)")
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="measured calls per model, kind and round")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured calls first (tracing, compiling)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of one process per backend, order alternated")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",")
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.size or MODELS.get(m, 32) for m in models]
    if args.child:
        child(models, sizes, args.batch, args.steps, args.warmup)
        return
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} CPUs", file=sys.stderr)
    rounds = []
    for index in range(args.rounds):
        order = BACKENDS if index % 2 == 0 else BACKENDS[::-1]
        rounds.append({backend: run_child(backend, args, models, sizes) for backend in order})
        print(json.dumps(rounds[-1]), file=sys.stderr)
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)
    print(table(rounds, list(zip(models, sizes))))


if __name__ == "__main__":
    main()
