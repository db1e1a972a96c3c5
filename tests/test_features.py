"""Backbones for dense tasks (``features=True``, ``out_indices=``, ``kc.get_backbone``): which tensor each pyramid level
is, its shape, stride and channels, its equality with the classifier's activations, and weights loading.

One row per family and layout, each on a small input (64x64 ImageNet stem, 32x32 CIFAR): a registered factory where
it is cheap, else the family's architecture with one or two blocks per stage (the same code path as its registered
depths). The layer that ends each level is written here by hand, so a change in which tensor a level takes fails.

Equality bounds: the backbone and the classifier (or the memory-efficient and the plain DenseNet) run the same
kernels on the same inputs and weights, in the same order, in one process; a float32 result depends only on its
operands and the order of its operations, so the outputs are bitwise equal and the tests assert exact equality. (The
memory-efficient model's block concatenates once instead of layer by layer: concatenation copies values, it adds no
rounding.)
"""

import dataclasses
import os

import numpy as np
import pytest

import keras_convnets as kc
from keras_convnets.models import application, densenet, registry, resnet
from keras_convnets.models.backend import KERAS_3, keras

IMAGENET_V2 = dataclasses.replace(resnet.imagenet_resnet(50, "keras_v2"),
                                  stages=((64, 2), (128, 2), (256, 2), (512, 1)))
IMAGENET_DENSENET = dataclasses.replace(densenet.imagenet_densenet(121), block_sizes=(1, 1, 1, 1))


def _built(architecture):
    return lambda **kwargs: application.build_model(architecture=architecture, **kwargs)


# (id, factory, input size, registered name or None, {level: (stride, channels, layer that ends it)})
ROWS = [
    ("resnet18", kc.ResNet18, 64, "resnet18",
     {"P1": (2, 64, "conv1_relu"), "P2": (4, 64, "conv2_block2_out"), "P3": (8, 128, "conv3_block2_out"),
      "P4": (16, 256, "conv4_block2_out"), "P5": (32, 512, "conv5_block2_out")}),
    # keras.applications' ResNetV2 strides on a stage's last block: each level is the block before it; no stem BN
    ("keras_v2", _built(IMAGENET_V2), 64, None,
     {"P1": (2, 64, "conv1_conv"), "P2": (4, 256, "conv2_block1_out"), "P3": (8, 512, "conv3_block1_out"),
      "P4": (16, 1024, "conv4_block1_out"), "P5": (32, 2048, "post_relu")}),
    ("densenet_imagenet", _built(IMAGENET_DENSENET), 64, None,
     {"P1": (2, 64, "conv1_relu"), "P2": (4, 96, "conv2_block1_concat"), "P3": (8, 80, "conv3_block1_concat"),
      "P4": (16, 72, "conv4_block1_concat"), "P5": (32, 68, "relu")}),
    ("resnet20", kc.ResNet20, 32, "resnet20",
     {"P0": (1, 16, "conv2_block3_out"), "P1": (2, 32, "conv3_block3_out"), "P2": (4, 64, "conv4_block3_out")}),
    ("preact_resnet11", lambda **kw: kc.PreActResNet(11, **kw), 32, None,
     {"P0": (1, 64, "conv2_block1_out"), "P1": (2, 128, "conv3_block1_out"), "P2": (4, 256, "post_relu")}),
    ("wrn_10_2", lambda **kw: kc.WideResNet(10, 2, **kw), 32, None,
     {"P0": (1, 32, "conv2_block1_out"), "P1": (2, 64, "conv3_block1_out"), "P2": (4, 128, "post_relu")}),
    ("resnext11_2x4d", lambda **kw: kc.ResNeXt(11, 2, 4, **kw), 32, None,
     {"P0": (1, 256, "conv2_block1_out"), "P1": (2, 512, "conv3_block1_out"), "P2": (4, 1024, "conv4_block1_out")}),
    ("densenet_bc_10", lambda **kw: kc.CifarDenseNet(10, **kw), 32, None,
     {"P0": (1, 36, "conv2_block1_concat"), "P1": (2, 30, "conv3_block1_concat"), "P2": (4, 27, "relu")}),
    ("densenet_7", lambda **kw: kc.CifarDenseNet(7, bottleneck=False, compression=1.0, **kw), 32, None,
     {"P0": (1, 28, "conv2_block1_concat"), "P1": (2, 40, "conv3_block1_concat"), "P2": (4, 52, "relu")}),
]


def _images(size, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype("float32")


def _as_numpy(outputs):
    return {name: np.asarray(value) for name, value in outputs.items()}


def _classifier_probe(classifier, layers):
    """The classifier's activations at ``layers``, the last replaced by its pooling's input (the pre-pool one)."""
    tensors = [classifier.get_layer(name).output for name in layers[:-1]]
    return keras.Model(classifier.input, tensors + [classifier.get_layer("avg_pool").input])


def _copy_weights(source, target):
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def _weights_file(directory, name):
    return os.path.join(directory, f"{name}{'.weights.h5' if KERAS_3 else '.h5'}")


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_levels_are_the_named_tensors_at_their_strides_and_the_last_is_the_pre_pool_activation(row):
    _, factory, size, registered, expected = row
    backbone = factory(features=True, input_shape=(size, size, 3))
    assert list(backbone.output) == list(expected)
    assert [backbone.output[level]._keras_history[0].name for level in expected] == \
        [layer for _, _, layer in expected.values()]
    classifier = factory(input_shape=(size, size, 3))
    _copy_weights(classifier, backbone)
    images = _images(size)
    features = _as_numpy(backbone(images, training=False))
    for level, (stride, channels, _) in expected.items():
        assert features[level].shape == (2, size // stride, size // stride, channels), level
    reference = [np.asarray(a) for a in _classifier_probe(classifier, [e[2] for e in expected.values()])(
        images, training=False)]
    for level, activation in zip(expected, reference):
        np.testing.assert_array_equal(features[level], activation, err_msg=level)   # same ops: bitwise equal
    assert np.std(features[list(expected)[-1]]) > 0
    if registered:
        info = registry.model_info(registered)
        assert [(lv.name, lv.stride, lv.channels) for lv in info.levels] == \
            [(level, stride, channels) for level, (stride, channels, _) in expected.items()]


def test_registry_levels_follow_the_naming_rule_for_every_model():
    for info in registry.REGISTRY.values():
        names = [level.name for level in info.levels]
        assert names == (["P1", "P2", "P3", "P4", "P5"] if info.dataset == "imagenet" else ["P0", "P1", "P2"]), \
            info.name
        assert [level.stride for level in info.levels] == [2 ** int(name[1:]) for name in names]
        assert all(level.channels > 0 for level in info.levels)
    assert [level.channels for level in registry.model_info("densenet121").levels] == [64, 256, 512, 1024, 1024]
    assert [level.channels for level in registry.model_info("resnet50").levels] == [64, 256, 512, 1024, 2048]


def test_get_backbone_loads_a_weights_file_of_the_classifier_or_of_the_backbone(tmp_path):
    """Both files on Keras 3 (its .weights.h5 matches layers by name); tf-keras' .h5 matches them by order, so there
    the backbone's file only, as with include_top=False."""
    keras.utils.set_random_seed(1)
    classifier = kc.ResNet20()
    expected = ROWS[3][4]
    images = _images(32, seed=2)
    reference = [np.asarray(a) for a in _classifier_probe(classifier, [e[2] for e in expected.values()])(images)]
    top, notop = _weights_file(tmp_path, "top"), _weights_file(tmp_path, "notop")
    classifier.save_weights(top)
    backbone = kc.ResNet20(include_top=False)
    _copy_weights(classifier, backbone)
    backbone.save_weights(notop)
    for path in (top, notop) if KERAS_3 else (notop,):
        features = _as_numpy(kc.get_backbone("resnet20", weights=path)(images))
        for level, activation in zip(expected, reference):
            np.testing.assert_array_equal(features[level], activation, err_msg=f"{level} from {path}")


def _torchvision_state(model):
    """A torchvision-format state dict of our torchvision-layout ResNet ``model`` (the inverse of the loader's map)."""
    from keras_convnets.models import resnet

    state = {}
    for layer in model.layers:
        prefix = resnet.torch_key(layer.name)
        if prefix is None or not layer.weights:
            continue
        values = layer.get_weights()
        kind = type(layer).__name__
        if kind == "Conv2D":
            state[f"{prefix}.weight"] = values[0].transpose(3, 2, 0, 1)
        elif kind == "Dense":
            state[f"{prefix}.weight"], state[f"{prefix}.bias"] = values[0].T, values[1]
        else:   # BN, PyTorch's eps already: gamma, beta, mean, variance
            for suffix, value in zip(("weight", "bias", "running_mean", "running_var"), values):
                state[f"{prefix}.{suffix}"] = value
    return {key: np.ascontiguousarray(value, np.float32) for key, value in state.items()}


def test_a_torchvision_checkpoint_loads_into_the_backbone(tmp_path):
    """The ``weights=`` path of "torchvision" / "timm" (a named source is this file, downloaded): strict loading
    into the headless model skips the checkpoint's classifier; the pyramid then equals the classifier's."""
    save_file = pytest.importorskip("safetensors.numpy").save_file
    keras.utils.set_random_seed(3)
    classifier = kc.ResNet18(input_shape=(64, 64, 3))
    path = str(tmp_path / "resnet18.safetensors")
    save_file(_torchvision_state(classifier), path)
    backbone = kc.get_backbone("resnet18", weights=path, input_shape=(64, 64, 3), out_indices=[0, "P5"])
    images = _images(64, seed=4)
    features = _as_numpy(backbone(images))
    reference = _classifier_probe(classifier, ["conv1_relu", "conv5_block2_out"])(images)
    assert list(features) == ["P1", "P5"]
    for level, activation in zip(features, reference):
        np.testing.assert_array_equal(features[level], np.asarray(activation), err_msg=level)


def test_memory_efficient_backbone_equals_the_plain_one_with_the_same_weights_file(tmp_path):
    build = _built(IMAGENET_DENSENET)
    keras.utils.set_random_seed(5)
    path = _weights_file(tmp_path, "densenet")
    build(include_top=False, input_shape=(64, 64, 3)).save_weights(path)   # a backbone file: loads on tf-keras too
    images = _images(64, seed=6)
    plain = _as_numpy(build(features=True, weights=path, input_shape=(64, 64, 3))(images))
    efficient = build(features=True, weights=path, input_shape=(64, 64, 3), memory_efficient=True)
    assert any("recomputed" in layer.name for layer in efficient.layers)
    features = _as_numpy(efficient(images))
    assert list(features) == list(plain) == ["P1", "P2", "P3", "P4", "P5"]
    for level in plain:
        np.testing.assert_array_equal(features[level], plain[level], err_msg=level)


def test_out_indices_pick_levels_by_index_or_name_in_level_order():
    assert list(kc.ResNet20(features=True, out_indices=["P2", 0]).output) == ["P0", "P2"]
    model = kc.get_backbone("resnet20", out_indices=(1,))
    assert list(model.output) == ["P1"]
    assert model.layers[-1].name == "conv3_block3_out"   # the layers past the last chosen level are cut away
    assert not any(layer.name.startswith("conv4") for layer in model.layers)


@pytest.mark.parametrize("out_indices", [[3], ["P3"], [], [True], [0, "P0"], "P1", 1, [-1], [1.0]])
def test_bad_out_indices_name_what_is_accepted(out_indices):
    with pytest.raises(ValueError, match=r"out_indices must be None or a non-empty list of level indices 0-2 or "
                                         r"names 'P0', 'P1', 'P2' \(this model's levels\), each at most once; got"):
        kc.ResNet20(features=True, out_indices=out_indices)


@pytest.mark.parametrize("kwargs,message", [
    ({"pooling": "avg"}, "pooling='avg' describes a classifier head, which features=True does not build"),
    ({"classes": 10}, "classes=10 describes a classifier head"),
    ({"classifier_activation": None}, "classifier_activation=None describes a classifier head"),
    ({"features": "yes"}, "features must be False or True; got 'yes'"),
    ({"features": False, "out_indices": [0]}, r"out_indices=\[0\] applies only with features=True"),
])
def test_head_arguments_with_features_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kc.ResNet20(**{"features": True, **kwargs})


def test_include_top_is_ignored_and_get_backbone_is_always_a_backbone():
    """keras.applications' include_top defaults to True: features=True ignores it (timm's features_only ignores the
    classifier too) and loads as include_top=False would (the *_notop file for weights="imagenet")."""
    model = kc.ResNet20(True, features=True)
    assert not any(layer.name == "predictions" for layer in model.layers)
    with pytest.raises(TypeError, match="features"):
        kc.get_backbone("resnet20", features=False)
