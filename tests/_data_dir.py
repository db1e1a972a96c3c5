"""Where the real CIFAR-10 subset is (``../shared/tensorflow_datasets`` beside the repo, or ``$TFDS_DATA_DIR``)."""

import os

import pytest

_BESIDE_REPO = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tensorflow_datasets")


def real_data_dir():
    for candidate in (os.environ.get("TFDS_DATA_DIR"), _BESIDE_REPO):
        if candidate and os.path.isfile(os.path.join(candidate, "cifar10", "3.0.2", "dataset_info.json")):
            return os.path.abspath(candidate)
    return None


requires_cifar10 = pytest.mark.skipif(
    real_data_dir() is None,
    reason="the real CIFAR-10 subset is absent (expected ../shared/tensorflow_datasets/cifar10 or $TFDS_DATA_DIR)")
