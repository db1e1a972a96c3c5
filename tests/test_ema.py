"""The weights' EMA (keras_convnets/training/ema.py) on toy models: after N steps of plain SGD the shadow equals the
closed-form average, BN statistics are averaged too, validation during fit sees the average while training continues
from the raw weights, the average stays in the model at the end, and its state survives a save / load. Seconds."""

import numpy as np
import pytest

from keras_convnets.models.backend import keras
from keras_convnets.training import ema


def _toy(bn=False):
    inputs = keras.Input((3,))
    x = keras.layers.BatchNormalization(momentum=0.5, name="bn")(inputs) if bn else inputs
    outputs = keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros", name="dense")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", steps_per_execution=1)
    return model


def _data(steps):
    rng = np.random.default_rng(0)
    return rng.normal(size=(steps * 4, 3)).astype("float32"), rng.normal(size=(steps * 4, 1)).astype("float32")


class _Record(keras.callbacks.Callback):
    """The dense kernel after every step (the raw weights the optimizer produced)."""

    def __init__(self):
        super().__init__()
        self.kernels = []

    def on_train_begin(self, logs=None):
        self.kernels.append(self.model.get_layer("dense").kernel.numpy().copy())

    def on_train_batch_end(self, batch, logs=None):
        self.kernels.append(self.model.get_layer("dense").kernel.numpy().copy())


@pytest.mark.parametrize("warmup", [0, 2])
def test_shadow_after_n_steps_is_the_closed_form_average(warmup):
    steps, decay = 6, 0.8
    model = _toy()
    record, averaging = _Record(), ema.callback(decay, warmup_steps=warmup)
    x, y = _data(steps)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[record, averaging])
    w = record.kernels  # w[0] initial, w[t] after step t
    # shadow_0 = w_0; steps 1..warmup copy; after: s_t = d s_{t-1} + (1 - d) w_t
    expected = w[warmup]
    for t in range(warmup + 1, steps + 1):
        expected = decay * expected + (1 - decay) * w[t]
    assert averaging.steps == steps
    np.testing.assert_allclose(model.get_layer("dense").kernel.numpy(), expected, rtol=1e-6, atol=1e-7)
    assert not np.allclose(expected, w[-1], atol=1e-4), "the average differs from the last weights"


def test_batch_norm_statistics_are_averaged_and_integer_state_is_not():
    model = _toy(bn=True)
    names = [v.path if hasattr(v, "path") else v.name for v in ema.averaged_variables(model)]
    assert any("moving_mean" in n for n in names) and any("moving_variance" in n for n in names), names
    assert all(str(getattr(v.dtype, "name", v.dtype)).startswith("float") for v in ema.averaged_variables(model))
    steps, decay = 5, 0.5
    means = []

    class Means(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            means.append(self.model.get_layer("bn").moving_mean.numpy().copy())

        def on_train_batch_end(self, batch, logs=None):
            means.append(self.model.get_layer("bn").moving_mean.numpy().copy())

    averaging = ema.callback(decay)
    x, y = _data(steps)
    model.fit(x + 3.0, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[Means(), averaging])
    expected = means[0]
    for t in range(1, steps + 1):
        expected = decay * expected + (1 - decay) * means[t]
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), expected, rtol=1e-6)


def test_validation_sees_the_average_and_training_continues_from_the_raw_weights():
    steps, decay = 4, 0.5
    model = _toy()
    record, averaging = _Record(), ema.callback(decay)
    seen, resumed = [], []

    class Seen(keras.callbacks.Callback):
        def on_test_batch_begin(self, batch, logs=None):
            seen.append(self.model.get_layer("dense").kernel.numpy().copy())

        def on_epoch_begin(self, epoch, logs=None):
            resumed.append(self.model.get_layer("dense").kernel.numpy().copy())

    x, y = _data(steps)
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, validation_data=(x[:4], y[:4]),
              callbacks=[record, averaging, Seen()])
    w = record.kernels
    # epoch 1's validation sees the average after 4 steps, epoch 2 continues from the raw w[4] (step 5 starts there)
    expected = w[0]
    for t in range(1, steps + 1):
        expected = decay * expected + (1 - decay) * w[t]
    np.testing.assert_allclose(seen[0], expected, rtol=1e-6)
    assert not np.allclose(seen[0], w[steps])
    np.testing.assert_array_equal(resumed[1], w[steps])  # epoch 2 starts from the raw weights, not the average


def test_state_round_trips_and_a_misfit_is_refused(tmp_path):
    model = _toy()
    averaging = ema.callback(0.9)
    x, y = _data(3)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[averaging])
    averaging.save_state(str(tmp_path))
    restored = ema.callback(0.9)
    restored.set_model(model)
    restored.load_state(str(tmp_path))
    assert restored.steps == 3
    for a, b in zip(averaging.shadow, restored.shadow):
        np.testing.assert_array_equal(a, b)
    other = ema.callback(0.9)
    other.set_model(_toy(bn=True))
    with pytest.raises(ValueError, match="does not fit"):
        other.load_state(str(tmp_path))
    with pytest.raises(ValueError, match="missing"):
        other.load_state(str(tmp_path / "nowhere"))
