"""What the benchmark scripts share: finding the real CIFAR-10 subset."""

import os

BESIDE_REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tensorflow_datasets")


def data_dir(explicit=None):
    """``explicit``, else ``$TFDS_DATA_DIR``, else ``../shared/tensorflow_datasets`` beside the repository."""
    return explicit or os.environ.get("TFDS_DATA_DIR") or os.path.abspath(BESIDE_REPO)
