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
from keras_convnets.runtime import machine, precision, startup
from keras_convnets.runtime import settings as runtime_settings

keras3_only = pytest.mark.skipif(not KERAS_3, reason="tf-keras' BatchNormalization is fused already")


def _onednn_in_child(env_value, code="startup.prefer_onednn()"):
    env = {k: v for k, v in os.environ.items() if k != startup.ONEDNN_ENV}
    if env_value is not None:
        env[startup.ONEDNN_ENV] = env_value
    script = f"from keras_convnets.runtime import startup\n{code}\nprint('ONEDNN', startup.onednn_enabled())"
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
            "default = startup.onednn_enabled()\n"
            "assert startup.prefer_onednn() is default, 'reports the state TensorFlow started with'\n"
            f"assert {startup.ONEDNN_ENV!r} not in os.environ, 'sets nothing once TensorFlow is imported'\n"
            "print('DEFAULT', default)")
    enabled, stdout = _onednn_in_child(None, code)
    assert str(enabled) == stdout.split("DEFAULT ")[1].split()[0]


# One row per branch of the settings choice: (machine, data_threads, autotune, steps_per_execution, jit_compile).
SETTINGS_BRANCHES = {
    "small CPU": (machine.Machine(cpu_cores=2, onednn=True), 1, False, 1, False),
    "CPU with many cores": (machine.Machine(cpu_cores=64, onednn=True), None, True, 1, False),
    "one GPU": (machine.Machine(cpu_cores=16, gpus=1), None, True, 1, None),
    "several GPUs": (machine.Machine(cpu_cores=96, gpus=8), None, True, 1, None),
    "TPU": (machine.Machine(cpu_cores=96, tpu_cores=8), None, True, 32, None),
    # Keras on JAX: the same tf.data settings; every step jitted (JAX's trainer runs op by op without jit_compile)
    "small CPU, JAX": (machine.Machine(cpu_cores=2, backend="jax"), 1, False, 1, True),
    "one GPU, JAX": (machine.Machine(cpu_cores=16, gpus=1, backend="jax"), None, True, 1, True),
}


@pytest.mark.parametrize("branch", list(SETTINGS_BRANCHES))
def test_settings_are_chosen_per_machine(branch):
    machine, threads, autotune, steps, jit = SETTINGS_BRANCHES[branch]
    settings = runtime_settings.choose_settings(machine)
    assert (settings.data_threads, settings.autotune, settings.steps_per_execution, settings.jit_compile) == \
        (threads, autotune, steps, jit)
    options = runtime_settings.dataset_options(settings)
    assert options.autotune.enabled is autotune
    assert options.threading.private_threadpool_size == threads  # None: tf.data shares TensorFlow's pool
    compiled = runtime_settings.compile_options(settings=settings)
    assert compiled["steps_per_execution"] == steps and compiled.get("jit_compile") is jit
    # arrays of 32x32 images keep the measured thread on a small CPU; photo pipelines (decode, crop) get every core
    assert runtime_settings.input_threads(False, settings) == (threads or machine.cpu_cores)
    assert runtime_settings.input_threads(True, settings) == machine.cpu_cores
    assert runtime_settings.dataset_options(settings, threads=machine.cpu_cores).threading.private_threadpool_size == \
        (machine.cpu_cores if threads else None)
    line = settings.describe()
    assert line.startswith("Runtime: ") and machine.describe() in line and settings.reason in line


def test_settings_flags_override_the_choice_and_are_checked():
    small = machine.Machine(cpu_cores=2)
    settings = runtime_settings.choose_settings(small, steps_per_execution=8, jit_compile=True)
    assert (settings.steps_per_execution, settings.jit_compile, settings.data_threads) == (8, True, 1)
    # a capped epoch of 12 steps runs whole executions: 8 does not divide it, 6 does
    assert runtime_settings.compile_options(steps_per_epoch=12, settings=settings)["steps_per_execution"] == 6
    with pytest.raises(ValueError, match="steps_per_execution must be a positive integer"):
        runtime_settings.choose_settings(small, steps_per_execution=0)
    with pytest.raises(ValueError, match=r"jit_compile \(None: Keras decides\) must be None, True or False"):
        runtime_settings.choose_settings(small, jit_compile="yes")


def test_detected_machine_is_this_one():
    detected = machine.detect_machine()
    assert detected.cpu_cores == os.cpu_count() and detected.gpus == len(tf.config.list_physical_devices("GPU"))
    assert detected.onednn is startup.onednn_enabled()


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


# The CPUs the bf16 choice depends on, as /proc/cpuinfo shows them (abridged lines, real flag names).
CPUINFO = {
    "Intel Xeon 4th gen (Sapphire Rapids): AMX and AVX512-BF16":
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n",
         ("amx_bf16", "avx512_bf16")),
    "AMD Zen 4: AVX512-BF16, no AMX": ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n",
                                       ("avx512_bf16",)),
    "AVX-512 without bf16 (Ice Lake)": ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", ()),
    "AVX2 only": ("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n", ()),
    "Arm Neoverse V1 (Graviton 3)": ("Features\t: fp asimd sve bf16 i8mm\n", ("bf16",)),
    "no cpuinfo flags": ("", ()),
}


@pytest.mark.parametrize("cpu", list(CPUINFO))
def test_native_bf16_is_read_from_cpu_flags(cpu):
    text, flags = CPUINFO[cpu]
    assert machine.cpu_bf16_flags(text) == flags


AMX = ("amx_bf16", "avx512_bf16")
# One row per branch of the precision choice: (machine, requested) -> (Keras policy, oneDNN bf16 rewrite) or the
# start of the one-line error.
PRECISION_BRANCHES = {
    "bf16, AMX CPU": (machine.Machine(2, onednn=True, bf16_flags=AMX), "bf16", ("float32", True)),
    "bf16, Zen 4 CPU": (machine.Machine(16, onednn=True, bf16_flags=("avx512_bf16",)), "bf16", ("float32", True)),
    "auto, AMX CPU": (machine.Machine(2, onednn=True, bf16_flags=AMX), "auto", ("float32", True)),
    "auto, AVX2 CPU": (machine.Machine(2, onednn=True), "auto", ("float32", False)),
    "auto, bf16 CPU without oneDNN": (machine.Machine(2, bf16_flags=AMX), "auto", ("float32", False)),
    "auto, GPU host with bf16 CPU": (machine.Machine(16, gpus=1, onednn=True, bf16_flags=AMX), "auto",
                                     ("float32", False)),
    "bf16, GPU host": (machine.Machine(16, gpus=1), "bf16", ("mixed_bfloat16", False)),
    "bf16, TPU host": (machine.Machine(96, tpu_cores=8), "bf16", ("mixed_bfloat16", False)),
    "float32, AMX CPU": (machine.Machine(2, onednn=True, bf16_flags=AMX), "float32", ("float32", False)),
    "mixed_bfloat16 as asked, AMX CPU": (machine.Machine(2, onednn=True, bf16_flags=AMX), "mixed_bfloat16",
                                         ("mixed_bfloat16", False)),
    "mixed_float16 as asked, GPU host": (machine.Machine(16, gpus=1), "mixed_float16", ("mixed_float16", False)),
    "mixed_float16, CPU": (machine.Machine(2, onednn=True, bf16_flags=AMX), "mixed_float16",
                           "precision mixed_float16 cannot run usefully on a CPU"),
    "mixed_bfloat16, AVX2 CPU": (machine.Machine(2, onednn=True), "mixed_bfloat16",
                                 "precision mixed_bfloat16 cannot run usefully on a CPU without native bf16"),
    "bf16, AVX2 CPU": (machine.Machine(2, onednn=True), "bf16", "precision bf16 cannot run on a CPU without"),
    "bf16, bf16 CPU without oneDNN": (machine.Machine(2, bf16_flags=AMX), "bf16",
                                      "precision bf16 cannot run without oneDNN kernels"),
    # Keras on JAX: no oneDNN rewrite; bf16 is Keras' mixed_bfloat16 where bf16 is native, refused where it is not
    "bf16, AMX CPU, JAX": (machine.Machine(2, bf16_flags=AMX, backend="jax"), "bf16", ("mixed_bfloat16", False)),
    "bf16, GPU host, JAX": (machine.Machine(16, gpus=1, backend="jax"), "bf16", ("mixed_bfloat16", False)),
    "auto, AMX CPU, JAX": (machine.Machine(2, bf16_flags=AMX, backend="jax"), "auto", ("float32", False)),
    "float32, AMX CPU, JAX": (machine.Machine(2, bf16_flags=AMX, backend="jax"), "float32", ("float32", False)),
    "bf16, AVX2 CPU, JAX": (machine.Machine(2, backend="jax"), "bf16", "precision bf16 cannot run on a CPU without"),
    "mixed_bfloat16, AVX2 CPU, JAX": (machine.Machine(2, backend="jax"), "mixed_bfloat16",
                                      "precision mixed_bfloat16 cannot run usefully on a CPU without native bf16"),
}


@pytest.mark.parametrize("branch", list(PRECISION_BRANCHES))
def test_precision_is_chosen_per_machine(branch):
    machine, requested, expected = PRECISION_BRANCHES[branch]
    if isinstance(expected, str):  # never silently: a one-line error that says why and what to use
        with pytest.raises(precision.PrecisionError) as error:
            runtime_settings.choose_settings(machine, precision=requested)
        message = str(error.value)
        assert message.startswith(expected) and "\n" not in message and "float32 or auto" in message
        return
    chosen = precision.choose_precision(machine, requested)
    assert (chosen.policy, chosen.onednn_bf16) == expected
    line = runtime_settings.choose_settings(machine, precision=requested).describe()
    assert line.startswith("Runtime: ") and chosen.describe() in line, "the run's first line says which precision"
    assert ("precision bf16 (oneDNN graph rewrite)" in line) is chosen.onednn_bf16
    # a float32 run on a CPU that would gain says how
    assert ("--precision bf16 measured" in line) is (branch == "float32, AMX CPU")


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision must be 'float32', 'bf16', 'auto', .* got 'bfloat16'"):
        precision.choose_precision(machine.Machine(2), "bfloat16")


def test_onednn_bf16_option_is_set_for_the_block_and_restored():
    def option():
        return tf.config.optimizer.get_experimental_options().get(precision.ONEDNN_BF16_OPTION, False)

    assert not option()
    with precision.onednn_bf16():
        assert option()
        with precision.onednn_bf16(False):
            assert not option()
        assert option()
    assert not option()


# bf16's unit roundoff: 8 significant bits (7 stored), round to nearest: relative error <= 2^-8 per rounding.
BF16_ROUNDOFF = 2.0 ** -8


def _train_losses(model, images, labels, steps, bf16):
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    with precision.onednn_bf16(bf16):
        return [float(model.train_on_batch(images, labels)) for _ in range(steps)]


def test_bf16_train_steps_are_finite_and_close_to_float32():
    # Same weights, same batch; whether or not this CPU rewrites to bf16 (the bounds hold either way).
    rng = np.random.default_rng(0)
    images = rng.random((16, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, 16)
    keras.utils.set_random_seed(0)
    model = ResNet20()
    weights = model.get_weights()
    float32 = _train_losses(model, images, labels, 3, bf16=False)
    model.set_weights(weights)
    bf16 = _train_losses(model, images, labels, 3, bf16=True)
    assert all(np.isfinite(bf16)), bf16
    # Step 1's loss is the forward pass of identical weights. The logits pass ~3 bf16 roundings (input, weight,
    # output) in each of ResNet-20's 20 weighted layers (accumulation is float32) plus a BN output per conv: n ~ 80
    # roundings of relative error <= 2^-8, independent, so ~sqrt(80) * 2^-8 = 3.5% relative on the logits (1 sigma);
    # cross-entropy's gradient in the logits has L1 norm <= 2, so |dL| <= 2 * max|dz|. An untrained ResNet-20's
    # logits are O(1): 4 sigma -> |dL| <= 2 * 4 * 0.035 = 0.28, about 12% of the loss (log 10 = 2.3).
    tolerance = 2 * 4 * np.sqrt(80) * BF16_ROUNDOFF
    assert abs(bf16[0] - float32[0]) <= tolerance, (bf16, float32)
    # Two SGD steps later the weights differ by lr * (gradient differences), small at lr 0.01: the same bound.
    assert abs(bf16[-1] - float32[-1]) <= tolerance, (bf16, float32)
