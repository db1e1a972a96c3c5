"""The pure blocks: shapes, names, the documented variant choices, stochastic depth."""

import numpy as np
import pytest

import keras_convnets as kc
from keras_convnets.models import blocks, resnet
from keras_convnets.models.backend import keras
from keras_convnets.models.config import TORCH


def build(fn, input_shape=(8, 8, 16), **kwargs):
    x = keras.Input(input_shape)
    return keras.Model(x, fn(x, **kwargs))


def test_blocks_are_tensor_in_tensor_out_with_keras_applications_names():
    model = build(kc.bottleneck_block, filters=8, stride=2, name="conv3_block1")
    assert model.output_shape == (None, 4, 4, 32)
    names = {layer.name for layer in model.layers}
    assert {"conv3_block1_0_conv", "conv3_block1_0_bn", "conv3_block1_1_conv", "conv3_block1_2_conv",
            "conv3_block1_3_bn", "conv3_block1_add", "conv3_block1_out"} <= names


@pytest.mark.parametrize("stride_on,strided", [("1x1", "conv_1_conv"), ("3x3", "conv_2_conv")])
def test_bottleneck_stride_position(stride_on, strided):
    """stride_on='1x1' is the original / keras.applications layout, '3x3' torchvision's v1.5."""
    model = build(kc.bottleneck_block, filters=8, stride=2, stride_on=stride_on, name="conv")
    strides = {layer.name: layer.strides for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}
    assert strides[strided] == (2, 2)
    other = "conv_2_conv" if strided == "conv_1_conv" else "conv_1_conv"
    assert strides[other] == (1, 1)


def test_option_a_shortcut_is_parameter_free_and_pads_zeros():
    model = build(kc.residual_block, input_shape=(8, 8, 4), filters=8, stride=2, shortcut_kind="zero_pad",
                  name="b")
    assert not any(layer.name.startswith("b_0_conv") for layer in model.layers)
    shortcut = build(lambda x: blocks.shortcut(x, 8, 2, "zero_pad", name="s"), input_shape=(4, 4, 4))
    x = np.arange(64, dtype="float32").reshape(1, 4, 4, 4) + 1
    y = shortcut(x).numpy()
    assert y.shape == (1, 2, 2, 8)
    np.testing.assert_array_equal(y[..., 2:6], x[:, ::2, ::2, :])
    assert not y[..., :2].any() and not y[..., 6:].any()


def test_projection_shortcut_has_bn_after_post_activation_blocks_only():
    v1 = build(kc.residual_block, input_shape=(8, 8, 4), filters=8, stride=2, name="b")
    v2 = build(kc.preact_residual_block, input_shape=(8, 8, 4), filters=8, stride=2, name="b")
    assert "b_0_bn" in {layer.name for layer in v1.layers}
    assert "b_0_bn" not in {layer.name for layer in v2.layers} and "b_0_conv" in {layer.name for layer in v2.layers}


def test_keras_v2_puts_the_stride_in_the_last_block_of_a_stage():
    model = kc.ResNet50V2(input_shape=(64, 64, 3), include_top=False)
    assert model.get_layer("conv2_block3_2_conv").strides == (2, 2)
    assert model.get_layer("conv2_block1_2_conv").strides == (1, 1)
    assert model.get_layer("conv5_block3_2_conv").strides == (1, 1)


def test_wide_block_puts_dropout_between_the_convs():
    model = build(kc.wide_block, filters=16, stride=1, dropout=0.3, name="w")
    order = [layer.name for layer in model.layers]
    assert order.index("w_1_conv") < order.index("w_dropout") < order.index("w_2_conv")


def test_dense_block_and_transition_channels():
    model = build(lambda x: kc.transition(kc.dense_block(x, 3, 12, name="d"), 0.5, name="t"), input_shape=(8, 8, 24))
    assert model.output_shape == (None, 4, 4, 30)      # floor((24 + 3 * 12) * 0.5)
    plain = build(kc.dense_layer, input_shape=(8, 8, 24), k=12, bottleneck=False, name="l")
    assert plain.output_shape == (None, 8, 8, 36)
    assert "l_1_conv" not in {layer.name for layer in plain.layers}


def test_blocks_read_the_config_they_are_given():
    config = TORCH.__class__(bn_epsilon=0.123, bn_momentum=0.5)
    model = build(kc.residual_block, filters=16, config=config, name="b")
    bn = model.get_layer("b_1_bn")
    assert bn.epsilon == pytest.approx(0.123) and bn.momentum == pytest.approx(0.5)


def test_survival_probabilities_decay_linearly_to_p_last():
    probs = resnet.survival_probabilities(54, 0.5)
    assert len(probs) == 54
    assert probs[-1] == pytest.approx(0.5) and probs[0] == pytest.approx(1 - 0.5 / 54)
    assert np.allclose(np.diff(probs), -0.5 / 54)


def test_stochastic_depth_is_one_argument_away_and_drops_per_example():
    model = kc.ResNet110(stochastic_depth=0.5, input_shape=(8, 8, 3))
    drops = [layer for layer in model.layers if isinstance(layer, kc.StochasticDepth)]
    assert len(drops) == 54 and drops[-1].survival == pytest.approx(0.5)
    layer = kc.StochasticDepth(0.5, seed=3)
    x = np.ones((2000, 2, 2, 1), "float32")
    y = layer(x, training=True).numpy()
    per_example = y.reshape(2000, -1)
    assert set(np.unique(per_example)) <= {0.0, 2.0}
    assert np.all(per_example.min(axis=1) == per_example.max(axis=1))   # whole example kept or dropped
    assert 0.4 < (per_example[:, 0] > 0).mean() < 0.6
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)


def test_weight_decay_adds_coupled_l2_losses():
    model = kc.ResNet20(weight_decay=1e-4, input_shape=(8, 8, 3))
    kernels = [w for w in model.trainable_weights if "kernel" in w.name]
    expected = sum(float(np.sum(np.square(w.numpy()))) for w in kernels) * 1e-4 / 2
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-4)


def test_mixed_precision_keeps_the_classifier_in_float32():
    model = kc.ResNet20(dtype="mixed_float16", input_shape=(8, 8, 3))
    assert model.get_layer("conv1_conv").compute_dtype == "float16"
    out = model(np.zeros((1, 8, 8, 3), "float32"))
    assert out.dtype == "float32"


@pytest.mark.parametrize("dtype, classifier", [("mixed_bfloat16", "float32"), ("float32", "float32"),
                                               ("float64", "float64")])
def test_the_classifier_is_float32_under_16_bits_and_the_models_dtype_otherwise(dtype, classifier):
    model = kc.ResNet20(dtype=dtype, input_shape=(8, 8, 3))
    assert model.get_layer("predictions").compute_dtype == classifier
    assert model(np.zeros((1, 8, 8, 3), "float32")).dtype == classifier
