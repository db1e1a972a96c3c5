"""The measured CPU defaults: oneDNN kernels turned on by the command, and the fused batch norm that must compute
exactly what Keras 3's BatchNormalization computes."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_convnets import DenseNet121, ResNet20
from keras_convnets.models.backend import KERAS_3, keras
from keras_convnets.models.layers import BatchNormalization as FusedBatchNorm
from keras_convnets.training import performance

keras3_only = pytest.mark.skipif(not KERAS_3, reason="tf-keras' BatchNormalization is fused already")


def _onednn_in_child(env_value, code="performance.prefer_onednn()"):
    env = {k: v for k, v in os.environ.items() if k != performance.ONEDNN_ENV}
    if env_value is not None:
        env[performance.ONEDNN_ENV] = env_value
    script = f"from keras_convnets import performance\n{code}\nprint('ONEDNN', performance.onednn_enabled())"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split("ONEDNN ")[1].strip() == "True"


def test_prefer_onednn_turns_kernels_on_before_tensorflow_is_imported():
    assert _onednn_in_child(None)


def test_prefer_onednn_respects_an_explicit_choice():
    assert not _onednn_in_child("0")


def test_prefer_onednn_after_tensorflow_changes_nothing_and_says_so():
    code = "import tensorflow\nassert performance.prefer_onednn() is False"
    assert not _onednn_in_child(None, code)


def _compare_with_keras_bn(shape, seed=0, **kwargs):
    """Max |difference| / max |value| of (training output, input/gamma/beta gradients, moving mean/variance after
    the step, inference output) between Keras 3's BatchNormalization and ours, same weights and input."""
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    fused = FusedBatchNorm(momentum=0.9, epsilon=1e-5, **kwargs)
    plain.build(shape)
    fused.build(shape)
    weights = [rng.normal(size=v.shape).astype("float32") for v in plain.weights]
    weights[3] = np.abs(weights[3])  # a variance
    plain.set_weights(weights)
    fused.set_weights(weights)
    results = []
    for layer in (plain, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))
        grads = tape.gradient(loss, [x] + layer.trainable_weights)
        results.append([y, *grads, *layer.non_trainable_weights, layer(x, training=False)])
    return [float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(1.0, np.max(np.abs(np.asarray(a)))))
            for a, b in zip(*results)]


@keras3_only
@pytest.mark.parametrize("shape, tolerance", [((8, 5, 5, 16), 1e-5), ((3, 2, 2, 7), 1e-5),
                                              # one value per channel: x - mean is 0 and y is beta; Keras 3 gets
                                              # there as x*s - mean*s with s = gamma/sqrt(eps) ~ 300, losing ~1e-5
                                              ((1, 1, 1, 4), 5e-5)])
def test_fused_batch_norm_computes_what_keras_3_computes(shape, tolerance):
    assert max(_compare_with_keras_bn(shape)) < tolerance


@keras3_only
def test_fused_batch_norm_takes_keras_path_where_the_kernel_does_not_apply():
    # synchronized statistics and 2-D inputs are not fusable: the parent's own code runs, so results are identical
    assert max(_compare_with_keras_bn((4, 6, 6, 5), synchronized=True)) == 0.0
    assert max(_compare_with_keras_bn((16, 5))) == 0.0


@keras3_only
def test_fused_batch_norm_is_one_kernel_in_the_training_graph():
    layer = FusedBatchNorm()
    layer.build((2, 4, 4, 3))
    graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(
        tf.TensorSpec((2, 4, 4, 3), tf.float32)).graph
    ops = {op.type for op in graph.get_operations()}
    assert "FusedBatchNormV3" in ops and "Mean" not in ops


@keras3_only
def test_models_use_the_fused_batch_norm_and_keep_keras_names():
    for model in (ResNet20(), DenseNet121(weights=None, input_shape=(32, 32, 3), classes=10)):
        norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        assert norms and all(isinstance(layer, FusedBatchNorm) for layer in norms)
    assert model.get_layer("conv2_block1_0_bn").weights[0].path == "conv2_block1_0_bn/gamma"


@keras3_only
def test_keras_file_of_our_model_loads_without_this_package(tmp_path):
    path = tmp_path / "densenet.keras"
    model = DenseNet121(weights=None, input_shape=(32, 32, 3), classes=10)
    model.save(path)
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "expected.npy", model.predict(images, verbose=0))
    script = ("import sys, numpy as np, keras\n"
              f"m = keras.models.load_model({str(path)!r})\n"
              "assert not any(k.startswith('keras_convnets') for k in sys.modules), 'keras_convnets was imported'\n"
              f"d = np.abs(m.predict(np.load({str(tmp_path / 'images.npy')!r}), verbose=0)"
              f" - np.load({str(tmp_path / 'expected.npy')!r})).max()\n"
              "print('MAXDIFF', d)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split("MAXDIFF")[1]) < 1e-5
