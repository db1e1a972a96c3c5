"""Writes the tfds CIFAR-10 splits (``TFDS_DATA_DIR``) as one ``.npz`` of uint8 NHWC images and int64 labels, for a
process that must not import TensorFlow: ``torch_resnet20.py`` runs this in a child process (TensorFlow and PyTorch
2.14 in one process crash when ``torch._dynamo`` is imported after TensorFlow, which ``torch.optim`` does).

    python benchmarks/cifar10_arrays.py OUT.npz [--data-dir DIR]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import data_dir  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    import tensorflow_datasets as tfds
    directory = data_dir(args.data_dir)
    try:
        splits = tfds.load("cifar10", split=["train", "test"], data_dir=directory, download=False,
                           as_supervised=True, batch_size=-1)
    except Exception as error:  # tfds raises several types for "not prepared here"
        raise SystemExit(f"no prepared CIFAR-10 in {directory or 'the tfds default directory'} "
                         f"({type(error).__name__}); set TFDS_DATA_DIR") from error
    arrays = {}
    for name, (images, labels) in zip(("train", "test"), tfds.as_numpy(splits)):
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = images, labels.astype(np.int64)
    np.savez(args.out, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
