"""The runtime settings chosen per machine (oneDNN kernels turned on by the command, tf.data and compile options per
CPU size and accelerator), and the fused batch norm that must compute exactly what Keras 3's BatchNormalization
computes."""

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
    script = f"from keras_convnets.training import performance\n{code}\nprint('ONEDNN', performance.onednn_enabled())"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split("ONEDNN ")[1].split()[0] == "True", out.stdout


def test_prefer_onednn_turns_kernels_on_before_tensorflow_is_imported():
    assert _onednn_in_child(None)[0]


def test_prefer_onednn_respects_an_explicit_choice():
    assert not _onednn_in_child("0")[0]


def test_prefer_onednn_after_tensorflow_changes_nothing_and_says_so():
    # TensorFlow's own default depends on the CPU (on with AVX512-VNNI/BF16/AMX, off elsewhere): ask it, then check
    # that prefer_onednn() reports that default and neither changes it nor pretends to
    code = ("import os, tensorflow\n"
            "default = performance.onednn_enabled()\n"
            "assert performance.prefer_onednn() is default, 'reports the state TensorFlow started with'\n"
            f"assert {performance.ONEDNN_ENV!r} not in os.environ, 'sets nothing once TensorFlow is imported'\n"
            "print('DEFAULT', default)")
    enabled, stdout = _onednn_in_child(None, code)
    assert str(enabled) == stdout.split("DEFAULT ")[1].split()[0]


# One row per branch of the settings choice: (machine, data_threads, autotune, steps_per_execution, jit_compile).
SETTINGS_BRANCHES = {
    "small CPU": (performance.Machine(cpu_cores=2, onednn=True), 1, False, 1, False),
    "CPU with many cores": (performance.Machine(cpu_cores=64, onednn=True), None, True, 1, False),
    "one GPU": (performance.Machine(cpu_cores=16, gpus=1), None, True, 1, None),
    "several GPUs": (performance.Machine(cpu_cores=96, gpus=8), None, True, 1, None),
    "TPU": (performance.Machine(cpu_cores=96, tpu_cores=8), None, True, 32, None),
}


@pytest.mark.parametrize("branch", list(SETTINGS_BRANCHES))
def test_settings_are_chosen_per_machine(branch):
    machine, threads, autotune, steps, jit = SETTINGS_BRANCHES[branch]
    settings = performance.choose_settings(machine)
    assert (settings.data_threads, settings.autotune, settings.steps_per_execution, settings.jit_compile) == \
        (threads, autotune, steps, jit)
    options = performance.dataset_options(settings)
    assert options.autotune.enabled is autotune
    assert options.threading.private_threadpool_size == threads  # None: tf.data shares TensorFlow's pool
    compiled = performance.compile_options(settings=settings)
    assert compiled["steps_per_execution"] == steps and compiled.get("jit_compile") is jit
    # arrays of 32x32 images keep the measured thread on a small CPU; photo pipelines (decode, crop) get every core
    assert performance.input_threads(False, settings) == (threads or machine.cpu_cores)
    assert performance.input_threads(True, settings) == machine.cpu_cores
    assert performance.dataset_options(settings, threads=machine.cpu_cores).threading.private_threadpool_size == \
        (machine.cpu_cores if threads else None)
    line = settings.describe()
    assert line.startswith("Runtime: ") and machine.describe() in line and settings.reason in line


def test_settings_flags_override_the_choice_and_are_checked():
    small = performance.Machine(cpu_cores=2)
    settings = performance.choose_settings(small, steps_per_execution=8, jit_compile=True)
    assert (settings.steps_per_execution, settings.jit_compile, settings.data_threads) == (8, True, 1)
    # a capped epoch of 12 steps runs whole executions: 8 does not divide it, 6 does
    assert performance.compile_options(steps_per_epoch=12, settings=settings)["steps_per_execution"] == 6
    with pytest.raises(ValueError, match="steps_per_execution must be a positive integer"):
        performance.choose_settings(small, steps_per_execution=0)
    with pytest.raises(ValueError, match=r"jit_compile \(None: Keras decides\) must be None, True or False"):
        performance.choose_settings(small, jit_compile="yes")


def test_detected_machine_is_this_one():
    machine = performance.detect_machine()
    assert machine.cpu_cores == os.cpu_count() and machine.gpus == len(tf.config.list_physical_devices("GPU"))
    assert machine.onednn is performance.onednn_enabled()


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
