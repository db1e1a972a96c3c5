"""The input pipeline: per-image augmentation, dataset statistics, seeded reproducibility."""

import numpy as np
import pytest
import tensorflow as tf

from keras_convnets import ResNet20
from keras_convnets.data import catalog, pipelines, preprocessing
from tests._data_dir import real_data_dir, requires_cifar10


@pytest.fixture
def synthetic_split(monkeypatch):
    """Replaces the tfds split by 64 distinct random images (labels 0..63), or by copies of one image."""
    def install(identical=False):
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (1 if identical else 64, 32, 32, 3), dtype=np.uint8)
        images = np.repeat(images, 64, axis=0) if identical else images
        split = tf.data.Dataset.from_tensor_slices((images, np.arange(64, dtype=np.int64)))
        monkeypatch.setattr(pipelines, "load_split", lambda *args, **kwargs: split)
        return images
    return install


def test_augmentation_is_per_image(synthetic_split):
    original = synthetic_split(identical=True)[0]
    batch, _ = next(iter(pipelines.load_dataset("cifar10", batch_size=64, seed=3)))
    batch = batch.numpy()
    assert batch.dtype == np.uint8 and batch.shape == (64, 32, 32, 3)
    distinct = {image.tobytes() for image in batch}
    # One source image: a per-batch crop would make all 64 identical; 81 offsets x 2 flips make repeats rare.
    assert len(distinct) > 32, f"only {len(distinct)} different crops in a batch of 64 copies of one image"
    unchanged = sum(np.array_equal(image, original) for image in batch)
    assert unchanged < 8
    # Every crop is a 32x32 window of the zero-padded image (possibly flipped).
    padded = np.pad(original, ((4, 4), (4, 4), (0, 0)))
    windows = {padded[i:i + 32, j:j + 32].tobytes() for i in range(9) for j in range(9)}
    windows |= {np.ascontiguousarray(padded[i:i + 32, j:j + 32][:, ::-1]).tobytes() for i in range(9) for j in range(9)}
    assert distinct <= windows


def test_test_split_is_not_augmented_or_shuffled(synthetic_split):
    images = synthetic_split()
    batch, labels = next(iter(pipelines.load_dataset("cifar10", "test", batch_size=64, training=False)))
    np.testing.assert_array_equal(batch.numpy(), images)
    np.testing.assert_array_equal(labels.numpy(), np.arange(64))


def _epochs(seed, epochs=2):
    ds = pipelines.load_dataset("cifar10", batch_size=16, seed=seed)
    return [np.concatenate([x.numpy().ravel() for x, _ in ds]) for _ in range(epochs)]


def test_seeded_pipeline_is_reproducible(synthetic_split):
    synthetic_split()
    first, second = _epochs(seed=1), _epochs(seed=1)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1]), "each epoch must reshuffle and re-augment"
    assert not np.array_equal(first[0], _epochs(seed=2)[0]), "another seed must give another order"


def test_every_image_of_the_split_is_seen_once_per_epoch(synthetic_split):
    synthetic_split()
    labels = np.concatenate([y.numpy() for _, y in pipelines.load_dataset("cifar10", batch_size=10, seed=0)])
    assert sorted(labels) == list(range(64))


def test_preprocessing_model_normalizes_with_the_dataset_statistics():
    spec = catalog.dataset_spec("cifar10")
    model = preprocessing.preprocessing_model(ResNet20(), spec, (32, 32, 3))
    assert model.input.dtype in ("uint8", tf.uint8)
    images = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    normalized = np.asarray(model.get_layer("normalize")(images))
    expected = (images / 255.0 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(normalized, expected, atol=1e-4)
    assert model(images).shape == (4, 10)


@requires_cifar10
def test_statistics_table_matches_the_real_images():
    statistics = catalog.compute_statistics("cifar10", data_dir=real_data_dir())
    mean, std = statistics.mean, statistics.std
    spec = catalog.dataset_spec("cifar10")
    # The table holds the full 50,000-image train split's figures; the subset's differ by < 0.005.
    np.testing.assert_allclose(mean, spec.mean, atol=0.01)
    np.testing.assert_allclose(std, spec.std, atol=0.01)


@requires_cifar10
def test_real_pipeline_shapes_and_size():
    ds = pipelines.load_dataset("cifar10", "test", batch_size=500, training=False, data_dir=real_data_dir())
    sizes = [int(x.shape[0]) for x, _ in ds]
    assert sum(sizes) == 1017


def test_missing_dataset_says_how_to_point_at_a_local_copy(tmp_path):
    with pytest.raises(catalog.DatasetUnavailableError, match="--data-dir.*TFDS_DATA_DIR"):
        pipelines.load_dataset("cifar10", data_dir=str(tmp_path))
    with pytest.raises(catalog.DatasetUnavailableError, match="unknown dataset 'mnist'.*cifar10"):
        catalog.dataset_spec("mnist")


def test_download_is_attempted_when_the_source_is_reachable(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    calls = []
    monkeypatch.setattr(catalog, "_reachable", lambda host, timeout=5.0: calls.append(host) or True)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        lambda self, *a, **k: calls.append("download") or (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.raises(RuntimeError, match="stop"):
        catalog.dataset_info("cifar10", data_dir=str(tmp_path), download=True)
    assert calls == ["www.cs.toronto.edu", "download"]


def test_offline_download_fails_at_once_saying_how_to_point_at_a_local_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "_reachable", lambda host, timeout=5.0: False)
    with pytest.raises(catalog.DatasetUnavailableError,
                       match="cannot be reached to download it; point --data-dir .*TFDS_DATA_DIR"):
        catalog.dataset_info("cifar10", data_dir=str(tmp_path), download=True)
