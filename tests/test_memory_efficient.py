"""memory_efficient=True DenseNets: the plain model's function, weights, BN statistics and SavedModel.

Scenarios that need their own TensorFlow process (two logical CPU devices for MirroredStrategy, which must be set
before TF initialises; tf-keras, which must be chosen before TF is imported) run this file as a script in a
subprocess: ``python tests/test_memory_efficient.py mirrored|tf_keras``.
"""

import os
import subprocess
import sys

import numpy as np

if __name__ != "__main__":
    import pytest
    import tensorflow as tf

    import keras_convnets as kc
    from keras_convnets.models.backend import KERAS_3, keras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _name(variable):
    return variable.path if hasattr(variable, "path") else variable.name


def _pair(factory, **kwargs):
    """A plain and a memory-efficient model with the same weights."""
    plain = factory(**kwargs)
    efficient = factory(memory_efficient=True, **kwargs)
    efficient.set_weights(plain.get_weights())
    return plain, efficient


def _batch(n, size, classes=10, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, size, size, 3)).astype(dtype), rng.integers(0, classes, size=(n,)))


def _loss_and_grads(model, x, y):
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = loss_fn(y, out)
    return out, loss, tape.gradient(loss, model.trainable_weights)


def _max_relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))


#: Relative bound of check_same_function. The memory-efficient model runs the plain model's ops on the same inputs
#: (its forward pass is bit-identical in practice); only the order in which recomputed gradients are summed may
#: differ. In float64 (unit roundoff 2^-53 = 1.1e-16) a sum of n terms reordered moves by at most ~n * 1.1e-16
#: relative to the largest term: under 1e-12 for the <= 10^4-term sums of these models, on any CPU. 1e-10 keeps 100x
#: margin; a real fault (BN statistics updated twice, the wrong input recomputed) moves results by 1e-3 or more.
SAME_FUNCTION_RTOL = 1e-10


def check_same_function(plain, efficient, x, y, rtol=SAME_FUNCTION_RTOL):
    """Same outputs, loss, gradients (max relative difference <= ``rtol``), then the same weights and BN moving
    statistics after one compiled training step (the model.fit path) on both. Pass float64 models and inputs for the
    default bound."""
    names = [(_name(w), tuple(w.shape)) for w in plain.weights]
    assert names == [(_name(w), tuple(w.shape)) for w in efficient.weights]
    out_p, loss_p, grads_p = _loss_and_grads(plain, x, y)
    out_e, loss_e, grads_e = _loss_and_grads(efficient, x, y)
    assert _max_relative(out_p, out_e) <= rtol
    assert abs(float(loss_p) - float(loss_e)) <= rtol * abs(float(loss_p))
    assert len(grads_p) == len(grads_e) and all(g is not None for g in grads_e)
    worst = max(_max_relative(gp, ge) for gp, ge in zip(grads_p, grads_e))
    assert worst <= rtol, worst
    before = plain.get_weights()
    for model in (plain, efficient):
        model.set_weights(before)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy())
        model.train_on_batch(x, y)
    stats = [i for i, w in enumerate(plain.weights) if "moving_" in _name(w)]
    after_p, after_e = plain.get_weights(), efficient.get_weights()
    for i in stats:  # updated once, exactly as the plain model's
        assert not np.array_equal(after_p[i], before[i]), _name(plain.weights[i])
        assert _max_relative(after_p[i], after_e[i]) <= rtol, _name(plain.weights[i])
    assert max(_max_relative(a, b) for a, b in zip(after_p, after_e)) <= rtol


def check_fit_and_export(factory, tmp_dir, **kwargs):
    """A few model.fit steps, export, reload with tf.saved_model.load: the same predictions as the model."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel,redefined-outer-name

    from keras_convnets.models.backend import KERAS_3, keras  # pylint: disable=import-outside-toplevel,redefined-outer-name
    model = factory(memory_efficient=True, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    x, y = _batch(16, int(model.input.shape[1]))
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    path = os.path.join(tmp_dir, "saved_model")
    if KERAS_3:
        model.export(path)
    else:
        tf.saved_model.save(model, path)
    loaded = tf.saved_model.load(path)  # keep a reference: its functions use its variables
    served = loaded.serve if KERAS_3 else loaded.signatures["serving_default"]
    expected = model.predict(x[:4], verbose=0)
    got = served(tf.constant(x[:4]))
    got = got if not isinstance(got, dict) else next(iter(got.values()))
    assert np.allclose(expected, np.asarray(got), rtol=1e-5, atol=1e-6)


if __name__ != "__main__":

    def test_densenet_bc_same_function_weights_and_bn_statistics():
        """DenseNet-BC's bottleneck and compressed transitions (L=22: the code path of L=100, in seconds)."""
        plain, efficient = _pair(kc.CifarDenseNet, depth=22, bottleneck=True, compression=0.5,
                                 input_shape=(16, 16, 3), dtype="float64")
        check_same_function(plain, efficient, *_batch(4, 16, dtype="float64"))

    def test_densenet_bc_100_has_the_plain_models_weights():
        plain, efficient = _pair(kc.DenseNetBC100, input_shape=(32, 32, 3))
        assert efficient.count_params() == plain.count_params() == 793_150
        assert sum(int(np.prod(w.shape)) for w in efficient.trainable_weights) == 769_162

    @pytest.mark.slow
    def test_densenet_bc_100_same_function_weights_and_bn_statistics():
        plain, efficient = _pair(kc.DenseNetBC100, input_shape=(32, 32, 3), dtype="float64")
        check_same_function(plain, efficient, *_batch(4, 32, dtype="float64"))

    def test_densenet_without_bottleneck_recomputes_the_3x3_conv():
        plain, efficient = _pair(kc.CifarDenseNet, depth=13, bottleneck=False, compression=1.0,
                                 input_shape=(16, 16, 3), dtype="float64")
        check_same_function(plain, efficient, *_batch(4, 16, dtype="float64"))

    def test_densenet121_same_weights_and_layer_names_reachable():
        plain, efficient = _pair(kc.DenseNet121, input_shape=(32, 32, 3), weights=None)
        assert [(_name(w), tuple(w.shape)) for w in plain.weights] == \
            [(_name(w), tuple(w.shape)) for w in efficient.weights]
        assert sum(int(np.prod(w.shape)) for w in efficient.trainable_weights) == 7_978_856
        assert efficient.count_params() == 8_062_504
        assert efficient.get_layer("conv2_block1_recomputed").norm.name == "conv2_block1_0_bn"
        assert efficient.get_layer("conv5_block16_2_conv") is not None
        assert efficient.get_layer("conv5_block16_concat").output.shape[-1] == 1024

    def test_plain_densenet_unchanged():
        model = kc.DenseNetBC100(input_shape=(32, 32, 3))
        assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 769_162
        assert not any("recomputed" in layer.name for layer in model.layers)
        assert model.get_layer("conv2_block1_concat") is not None

    def test_fit_and_saved_model(tmp_path):
        check_fit_and_export(kc.CifarDenseNet, str(tmp_path), depth=16, input_shape=(16, 16, 3))

    @pytest.mark.parametrize("scenario", ["mirrored", "tf_keras"])
    def test_in_own_process(scenario):
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   TF_CPP_MIN_LOG_LEVEL="2")
        run = subprocess.run([sys.executable, os.path.abspath(__file__), scenario], env=env, capture_output=True,
                             text=True, timeout=600, check=False)
        assert run.returncode == 0 and "OK" in run.stdout, run.stdout[-2000:] + run.stderr[-4000:]


def _mirrored():
    """Two logical CPUs: the memory-efficient model trains under MirroredStrategy to the plain model's weights."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras_convnets as kc  # pylint: disable=import-outside-toplevel
    from keras_convnets.models.backend import keras  # pylint: disable=import-outside-toplevel

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x, y = _batch(8, 16, dtype="float64")
    results = []
    with strategy.scope():
        plain, efficient = _pair(kc.CifarDenseNet, depth=16, input_shape=(16, 16, 3), dtype="float64")
        start = plain.get_weights()
        for model in (plain, efficient):
            model.set_weights(start)
            model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                          loss=keras.losses.SparseCategoricalCrossentropy())
            model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
            results.append(model.get_weights())
    worst = max(_max_relative(a, b) for a, b in zip(*results))
    # Two epochs of SGD amplify reordering differences (float32 runs of this check stayed under 1e-4 from 6e-8,
    # a factor under 2e3); from float64's 1.1e-16 that is under 1e-12.
    assert worst <= SAME_FUNCTION_RTOL, worst
    assert any(not np.array_equal(a, b) for a, b in zip(start, results[1]))


def _tf_keras():
    """The same checks under tf-keras (Keras 2)."""
    global keras, tf, KERAS_3  # pylint: disable=global-statement,invalid-name
    import tempfile  # pylint: disable=import-outside-toplevel

    import tensorflow as tf  # pylint: disable=import-outside-toplevel,redefined-outer-name

    import keras_convnets as kc  # pylint: disable=import-outside-toplevel,redefined-outer-name
    from keras_convnets.models.backend import KERAS_3, keras  # pylint: disable=import-outside-toplevel
    assert not KERAS_3
    plain, efficient = _pair(kc.CifarDenseNet, depth=16, input_shape=(16, 16, 3), dtype="float64")
    check_same_function(plain, efficient, *_batch(4, 16, dtype="float64"))
    with tempfile.TemporaryDirectory() as tmp_dir:
        check_fit_and_export(kc.CifarDenseNet, tmp_dir, depth=16, input_shape=(16, 16, 3))


if __name__ == "__main__":
    if sys.argv[1] == "tf_keras":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        _tf_keras()
    else:
        import tensorflow as tf  # noqa: F401  (module global for the helpers)

        from keras_convnets.models.backend import KERAS_3, keras  # noqa: F401
        _mirrored()
    print("OK")
