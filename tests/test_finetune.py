"""Fine-tuning from a weights file the test writes (a keras.applications-layout ResNet-50 backbone built by our
factory), on a mock tfds dataset that is not CIFAR, at a small ImageNet-style size: the backbone loads the file, the
frozen phase leaves its weights and BatchNorm statistics bit-identical, the unfrozen phase changes them; and the run
goes end to end (export included)."""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_convnets.models import registry
from keras_convnets.models.backend import keras
from keras_convnets.training import finetune, loop
from tests.test_datasets import _write_tfds_metadata

SIZE = 64


def _backbone_variables(model):
    """Every variable of the backbone (kernels, BN gamma/beta and moving statistics) by path, as NumPy."""
    backbone = finetune.backbone_of(model)
    return {getattr(v, "path", v.name): np.array(v) for v in backbone.weights}


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finetune")
    weights_file = str(tmp / "resnet50_notop.weights.h5")
    keras.utils.set_random_seed(1)
    pretrained = registry.get_model("resnet50", include_top=False, weights=None, input_shape=(SIZE, SIZE, 3),
                                    pooling="avg")
    for layer in pretrained.layers:  # BN statistics a real file would have: not the initial 0 and 1
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, np.float32))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 2.0, np.float32))
    pretrained.save_weights(weights_file)
    saved = [np.array(v) for v in pretrained.weights]
    keras.backend.clear_session()

    snapshots = {}
    original = loop._train_head

    def spy(model, strategy, compile_for, recipe, epochs, fit):
        def fit_and_snapshot():
            snapshots["loaded"] = _backbone_variables(model)
            fit()
            snapshots["after_head"] = _backbone_variables(model)
        original(model, strategy, compile_for, recipe, epochs, fit_and_snapshot)
        snapshots["model"] = model

    data_dir = str(tmp / "tfds")
    _write_tfds_metadata(data_dir, "oxford_flowers102", {"train": 16, "validation": 8, "test": 8})
    loop._train_head = spy
    try:
        with tfds.testing.mock_data(num_examples=16, data_dir=data_dir, policy=tfds.testing.MockPolicy.USE_FILES):
            # the file stands in for keras.applications' ResNet-50 file: caffe-style BGR, as weights_channels says
            result = loop.train("resnet50", "oxford_flowers102", data_dir=data_dir, image_size=SIZE,
                                weights=weights_file, freeze_backbone=1, epochs=1, batch_size=4, steps_per_epoch=2,
                                out=str(tmp / "run"), verbose=0, weights_channels="bgr")
    finally:
        loop._train_head = original
    snapshots["final"] = _backbone_variables(snapshots["model"])
    return dict(result=result, saved=saved, weights_file=weights_file, **snapshots)


def test_backbone_starts_from_the_file_with_bgr_weights_for_rgb_input(fine_tuned):
    saved, loaded = fine_tuned["saved"], fine_tuned["loaded"]
    assert len(saved) == len(loaded)
    for value, (path, got) in zip(saved, loaded.items()):
        if "conv1_conv" in path and value.ndim == 4:
            # keras.applications' ResNet-50 weights take BGR ("caffe" mode): the first kernel is reversed once.
            np.testing.assert_array_equal(got, value[:, :, ::-1, :])
        else:
            np.testing.assert_array_equal(got, value, err_msg=path)


def test_frozen_phase_leaves_the_backbone_bit_identical(fine_tuned):
    loaded, after = fine_tuned["loaded"], fine_tuned["after_head"]
    assert loaded.keys() == after.keys()
    moving = [path for path in loaded if "moving" in path]
    assert len(moving) == 2 * 53  # ResNet-50's 53 BatchNorm layers
    for path in loaded:
        np.testing.assert_array_equal(after[path], loaded[path], err_msg=path)


def test_unfrozen_phase_changes_weights_and_bn_statistics(fine_tuned):
    after, final = fine_tuned["after_head"], fine_tuned["final"]
    changed = [path for path in after if not np.array_equal(after[path], final[path])]
    assert any("moving_mean" in path for path in changed) and any("moving_variance" in path for path in changed)
    assert any("kernel" in path for path in changed)
    assert len(changed) > 0.9 * len(after)


def test_fine_tune_run_records_its_recipe_and_exports(fine_tuned):
    result = fine_tuned["result"]
    record = json.load(open(os.path.join(result.out, "run.json")))
    assert record["status"] == "complete"
    assert record["arguments"]["weights"] == fine_tuned["weights_file"]
    assert record["arguments"]["freeze_backbone"] == 1
    assert record["arguments"]["weights_channels"] == "bgr"
    assert record["arguments"]["schedule"] == "cosine" and record["arguments"]["lr"] == 0.0025  # recipes.FINE_TUNE
    data = record["data"]
    assert (data["image_size"], data["augmentation"], data["crop_fraction"]) == (SIZE, "imagenet", 0.875)
    assert data["statistics"]["reverse_channels"] is True  # ResNet-50's keras.applications input: caffe mode
    assert data["evaluation"]["source"] == "test"
    assert len(result.history["loss"]) == 2  # one head epoch, one epoch of every layer
    assert os.path.isfile(os.path.join(result.export_path, "saved_model.pb"))


def test_a_resumed_run_reuses_its_recorded_statistics(tmp_path):
    """Statistics computed when a run starts are stored in run.json and read back, not computed again, when the
    same run is planned again (a resumption): the same normalization for the same weights."""
    import tensorflow as tf

    for name in ("a", "b"):
        os.makedirs(tmp_path / "photos" / name)
        for i in range(3):
            tf.io.write_file(str(tmp_path / "photos" / name / f"{i}.png"), tf.io.encode_png(
                np.full((40, 40, 3), 60 * i + (100 if name == "b" else 0), np.uint8)))
    out = str(tmp_path / "run")
    first = loop.plan("resnet18", str(tmp_path / "photos"), image_size=32, out=out)
    assert first.spec.statistics.source == "computed from 4 training images"
    os.makedirs(out)
    recorded = dict(first.spec.summary(), statistics=dict(first.spec.statistics.to_json(), mean=[0.25, 0.5, 0.75]))
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump({"status": "running", "arguments": first.arguments, "data": recorded}, f)
    again = loop.plan("resnet18", str(tmp_path / "photos"), image_size=32, out=out)
    assert again.spec.statistics.mean == (0.25, 0.5, 0.75)


def _photos(root):
    import tensorflow as tf

    for name in ("a", "b"):
        os.makedirs(root / name)
        for i in range(3):
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(np.full((40, 40, 3), 60 * i, np.uint8)))
    return str(root)


def _first_kernel(run_plan):
    model = loop.build_model(run_plan, (32, 32, 3), 2, policy="float32")
    return np.array(finetune.backbone_of(model).get_layer("conv1_conv").kernel)


def test_only_keras_applications_resnet_files_are_taken_as_bgr(tmp_path, monkeypatch):
    """keras.applications' ResNet-50 file (known by its file name or MD5) is caffe-style BGR: its first conv is
    reversed; a ResNet-50 file of our own (e.g. saved from an RGB run) is loaded as it is, unless the user says
    weights_channels='bgr'."""
    import hashlib

    from keras_convnets.models import pretrained
    from keras_convnets.models import weights as weights_lib

    photos = _photos(tmp_path / "photos")
    own = str(tmp_path / "resnet50_notop.weights.h5")
    keras.utils.set_random_seed(2)
    backbone = registry.get_model("resnet50", include_top=False, input_shape=(32, 32, 3), pooling="avg")
    backbone.save_weights(own)
    saved = np.array(backbone.get_layer("conv1_conv").kernel)

    def planned(weights, **kwargs):
        return loop.plan("resnet50", photos, image_size=32, weights=weights, out=str(tmp_path / "run"), **kwargs)

    mine = planned(own)
    assert not mine.spec.statistics.reverse_channels and "not keras.applications'" in mine.spec.statistics.source
    np.testing.assert_array_equal(_first_kernel(mine), saved)   # the first conv is the file's, unchanged
    assert planned(own, weights_channels="bgr").spec.statistics.reverse_channels

    named = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"  # as keras' get_file caches it
    named.write_bytes(b"")
    assert planned(str(named)).spec.statistics.reverse_channels
    assert not planned(str(named), weights_channels="rgb").spec.statistics.reverse_channels

    md5 = hashlib.md5(open(own, "rb").read()).hexdigest()  # the same bytes as the published file: its MD5 says so
    published = weights_lib.PUBLISHED["resnet50"]
    monkeypatch.setitem(weights_lib.PUBLISHED, "resnet50", pretrained.PublishedWeights(
        published.folder, published.stem, published.top_md5, md5))
    theirs = planned(own)
    assert theirs.spec.statistics.reverse_channels and "keras.applications' resnet50 file" in \
        theirs.spec.statistics.source
    np.testing.assert_array_equal(_first_kernel(theirs), saved[:, :, ::-1, :])
