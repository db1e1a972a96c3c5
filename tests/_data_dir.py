"""Where the real CIFAR-10 data is: the tensorflow_datasets directory named by ``$TFDS_DATA_DIR`` (``.ci/run`` sets
it), if it holds a prepared ``cifar10``. Tests that need real images skip with this reason when it does not."""

import os

import pytest

MISSING = "real CIFAR-10 data is absent: set TFDS_DATA_DIR to a tensorflow_datasets directory holding cifar10/3.0.2"


def real_data_dir():
    candidate = os.environ.get("TFDS_DATA_DIR")
    if candidate and os.path.isfile(os.path.join(candidate, "cifar10", "3.0.2", "dataset_info.json")):
        return os.path.abspath(candidate)
    return None


requires_cifar10 = pytest.mark.skipif(real_data_dir() is None, reason=MISSING)
