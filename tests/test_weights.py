"""weights= accepts None, a local file, or "imagenet" (a verified download); tested with files the test writes."""

import hashlib

import numpy as np
import pytest

import keras_convnets as kc
from keras_convnets.models import pretrained
from keras_convnets.models import weights as weights_lib
from keras_convnets.models.backend import KERAS_3, keras

SHAPE = (32, 32, 3)


def _outputs(model):
    x = np.random.default_rng(0).normal(0, 1, (2,) + SHAPE).astype("float32")
    return model(x, training=False).numpy()


def _weights_file(model, tmp_path):
    path = tmp_path / ("model.weights.h5" if KERAS_3 else "model.h5")
    model.save_weights(str(path))
    return path


def test_local_weights_file_round_trips(tmp_path):
    source = kc.ResNet20(input_shape=SHAPE)
    path = _weights_file(source, tmp_path)
    loaded = kc.ResNet20(input_shape=SHAPE, weights=str(path))
    np.testing.assert_array_equal(_outputs(source), _outputs(loaded))


def test_keras_applications_weights_file_loads_into_ours(tmp_path):
    reference = keras.applications.DenseNet121(weights=None, input_shape=SHAPE, include_top=False)
    path = _weights_file(reference, tmp_path)
    ours = kc.DenseNet121(input_shape=SHAPE, include_top=False, weights=str(path))
    np.testing.assert_allclose(_outputs(reference), _outputs(ours), atol=1e-6)


def test_imagenet_weights_download_through_get_file_with_hash(tmp_path, monkeypatch):
    """The real download path: a file:// URL stands in for storage.googleapis.com, with the file's real MD5."""
    source = kc.ResNet50(input_shape=SHAPE, include_top=False)
    path = _weights_file(source, tmp_path)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    entry = pretrained.PublishedWeights("resnet", "resnet50", "0" * 32, md5)
    monkeypatch.setattr(pretrained.PublishedWeights, "url", lambda self, top: path.as_uri())
    monkeypatch.setattr(pretrained.PublishedWeights, "file_name", lambda self, top: path.name)
    monkeypatch.setitem(weights_lib.PUBLISHED, "resnet50", entry)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(keras.utils, "get_file", _get_file_in(tmp_path / "cache"))
    loaded = kc.ResNet50(input_shape=SHAPE, include_top=False, weights="imagenet")
    np.testing.assert_array_equal(_outputs(source), _outputs(loaded))


def _get_file_in(cache_dir):
    real = keras.utils.get_file

    def get_file(fname, origin, cache_subdir, file_hash):
        return real(fname, origin, cache_subdir=cache_subdir, file_hash=file_hash, cache_dir=str(cache_dir))

    return get_file


def test_imagenet_download_failure_names_the_url_and_the_way_out(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(kc.WeightsUnavailableError) as error:
        kc.DenseNet121(weights="imagenet")
    message = str(error.value)
    assert "https://storage.googleapis.com/tensorflow/keras-applications/densenet/" \
           "densenet121_weights_tf_dim_ordering_tf_kernels.h5" in message
    assert "weights=" in message and "local path" in message


def test_hash_mismatch_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "bogus.h5"
    path.write_bytes(b"not weights")
    monkeypatch.setattr(pretrained.PublishedWeights, "url", lambda self, top: path.as_uri())
    monkeypatch.setattr(keras.utils, "get_file", _get_file_in(tmp_path / "cache"))
    with pytest.raises(kc.WeightsUnavailableError):
        kc.ResNet50(weights="imagenet", input_shape=SHAPE, include_top=False)


def test_published_table_covers_exactly_the_keras_applications_models():
    assert sorted(weights_lib.PUBLISHED) == sorted(
        ["resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2",
         "densenet121", "densenet169", "densenet201"])
    assert weights_lib.PUBLISHED["resnet50"].url(False).endswith(
        "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")


def test_imagenet_weights_are_found_by_architecture_not_by_display_name(tmp_path, monkeypatch):
    """Issue 11: ``ResNet50(weights="imagenet", name="backbone")`` looked the file up under "backbone" and failed;
    ``ResNet(50)`` (torchvision layout) could pick up keras' ResNet-50 file, which is for another layout."""
    source = kc.ResNet50(input_shape=SHAPE, include_top=False)
    path = _weights_file(source, tmp_path)
    asked = []
    monkeypatch.setattr(weights_lib, "fetch", lambda key, include_top: asked.append((key, include_top)) or str(path))
    backbone = kc.ResNet50(input_shape=SHAPE, include_top=False, weights="imagenet", name="backbone")
    general = kc.ResNet(50, layout="keras", input_shape=SHAPE, include_top=False, weights="imagenet")
    assert asked == [("resnet50", False), ("resnet50", False)]
    assert backbone.name == "backbone"
    np.testing.assert_array_equal(_outputs(source), _outputs(backbone))
    np.testing.assert_array_equal(_outputs(source), _outputs(general))
    with pytest.raises(ValueError, match=r"published only for .*; 'resnet50' has none"):
        kc.ResNet(50, weights="imagenet")  # torchvision layout
    with pytest.raises(ValueError, match=r"published only for .*; 'resnet50' has none"):
        kc.ResNet18(weights="imagenet", name="resnet50")
    assert asked == [("resnet50", False), ("resnet50", False)]


def test_every_published_file_belongs_to_exactly_one_registered_model():
    from keras_convnets.models import registry

    keys = [info.weights for info in registry.REGISTRY.values() if info.weights]
    assert sorted(keys) == sorted(weights_lib.PUBLISHED) and len(set(keys)) == len(keys)


def _legacy_h5_file(model, tmp_path):
    """A legacy (layer-order) ``.h5`` file, the format of keras.applications' own files."""
    path = tmp_path / "legacy.h5"
    if KERAS_3:
        model.save(str(path))  # Keras 3 writes the legacy HDF5 format for a ".h5" model file
    else:
        model.save_weights(str(path))
    return path


@pytest.mark.parametrize("kind", ["weights_file", "legacy_h5"])
def test_memory_efficient_densenet_loads_a_weights_file(tmp_path, kind):
    """Issue 11: the memory-efficient DenseNet could not load weights files (".weights.h5": "21 objects could not be
    loaded"; legacy ".h5": layer count mismatch). It loads through its plain twin, which has the same weights."""
    shape = (8, 8, 3)
    source = kc.CifarDenseNet(16, growth_rate=4, input_shape=shape)
    path = _weights_file(source, tmp_path) if kind == "weights_file" else _legacy_h5_file(source, tmp_path)
    loaded = kc.CifarDenseNet(16, growth_rate=4, input_shape=shape, memory_efficient=True, weights=str(path))
    x = np.random.default_rng(0).normal(0, 1, (2,) + shape).astype("float32")
    np.testing.assert_allclose(source(x, training=False).numpy(), loaded(x, training=False).numpy(), atol=1e-6)
    assert len(loaded.weights) == len(source.weights)
