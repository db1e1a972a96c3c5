"""ResNet-20 on the real CIFAR-10 subset (5,170 train / 1,017 test images): a known learning curve, not a CI test.

30 epochs, batch 128, SGD lr 0.1 with Nesterov momentum 0.9, cosine schedule, coupled L2 1e-4, pad-crop-flip.
Target: >= 70% on the 1,017 test images (shared/README: about 72% in ~9 minutes on 2 cores; here 70.7% in 6.5 min).
Prints the accuracy and the time. ``--precision bf16`` trains under the oneDNN bf16 rewrite (a CPU with native bf16),
for the accuracy comparison of issue 20: run it once with each precision, same seed.

    python benchmarks/resnet20_cifar10.py [--epochs 30] [--precision float32|bf16|auto] [--out DIR] [--data-dir DIR]
"""

import argparse
import dataclasses
import tempfile
import time

from _common import data_dir


def resnet20_plan(epochs=30, seed=0, precision="float32", out=None, directory=None, **options):
    """The run this script trains: ``keras_convnets.training.plan``'s plan for ResNet-20 on the CIFAR-10 subset with
    the cosine schedule and Nesterov momentum (``benchmarks/torch_resnet20.py`` is its PyTorch peer). Call
    ``keras_convnets.runtime.startup.prefer_onednn()`` first, as the keras-convnets command does, before TensorFlow
    is imported. ``options``: further ``plan`` arguments (``steps_per_execution=``, ``batch_size=``, ...)."""
    from keras_convnets.training.plan import plan

    run_plan = plan("resnet20", "cifar10", epochs=epochs, schedule="cosine", out=out, data_dir=data_dir(directory),
                    seed=seed, precision=precision, **options)
    return dataclasses.replace(run_plan, recipe=dataclasses.replace(run_plan.recipe, nesterov=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output directory (default: a fresh temporary one)")
    parser.add_argument("--data-dir")
    parser.add_argument("--precision", default="float32", help="float32, bf16, auto, ... (keras_convnets.train's)")
    args = parser.parse_args()

    from keras_convnets.runtime import startup
    startup.prefer_onednn()  # as the keras-convnets command does, before TensorFlow is imported
    from keras_convnets.training.loop import run

    out = args.out or tempfile.mkdtemp(prefix="resnet20_cifar10_")
    run_plan = resnet20_plan(args.epochs, args.seed, args.precision, out, args.data_dir)
    start = time.perf_counter()
    result = run(run_plan, verbose=2)
    minutes = (time.perf_counter() - start) / 60
    best = max(result.history["val_accuracy"])
    print(f"ResNet-20, {args.epochs} epochs on the CIFAR-10 subset, precision {args.precision}: "
          f"test accuracy {result.test_accuracy:.4f} "
          f"(best epoch {best:.4f}) on 1,017 images in {minutes:.1f} min; SavedModel in {result.export_path}")


if __name__ == "__main__":
    main()
