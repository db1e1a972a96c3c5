"""``precision="bf16"`` end to end on the real CIFAR-10 subset, on any CPU: the machine is injected with native bf16
(the choice is tested per CPU in tests/test_performance.py), so the run takes the oneDNN bf16 path here whether or
not this CPU rewrites the graphs (on a CPU that cannot, TensorFlow leaves them float32). What must hold either way:
training runs under the rewrite and ends with it off, the first line says bf16, the loss is finite, fine-tuning from
a weights file works, and the export serves float32 probabilities that match the trained model."""

import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_convnets.models import registry
from keras_convnets.models.backend import keras
from keras_convnets.runtime import machine, precision
from keras_convnets.serving import saved_model as savedmodel
from keras_convnets.training import loop
from tests._data_dir import real_data_dir, requires_cifar10

pytestmark = requires_cifar10

# bf16's unit roundoff: 8 significant bits (7 stored), round to nearest: relative error <= 2^-8 per rounding.
BF16_ROUNDOFF = 2.0 ** -8


def _option_on():
    return bool(tf.config.optimizer.get_experimental_options().get(precision.ONEDNN_BF16_OPTION, False))


@pytest.fixture()
def bf16_machine(monkeypatch):
    """This machine as the run sees it, with an AMX-BF16 CPU and oneDNN kernels; records the rewrite's state at
    every ``fit`` and every export."""
    detect = machine.detect_machine
    monkeypatch.setattr(machine, "detect_machine", lambda strategy=None: machine.Machine(
        **{**detect(strategy).__dict__, "onednn": True, "bf16_flags": ("amx_bf16", "avx512_bf16")}))
    seen = {"fit": [], "export": [], "models": []}
    fit = keras.Model.fit

    def spy_fit(model, *args, **kwargs):
        seen["fit"].append(_option_on())
        return fit(model, *args, **kwargs)

    exporter = savedmodel._write_checked

    def spy_export(model, *args, **kwargs):
        seen["export"].append(_option_on())
        seen["models"].append(model)
        return exporter(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    monkeypatch.setattr(savedmodel, "_write_checked", spy_export)
    return seen


def _test_images(count):
    import tensorflow_datasets as tfds
    images, _ = tfds.as_numpy(tfds.load("cifar10", split=f"test[:{count}]", data_dir=real_data_dir(), batch_size=-1,
                                        as_supervised=True, download=False))
    return images


def test_bf16_run_trains_under_the_rewrite_and_exports_float32(bf16_machine, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="keras_convnets")  # the library reports through logging
    result = loop.train("resnet20", "cifar10", data_dir=real_data_dir(), precision="bf16", epochs=1, batch_size=16,
                        steps_per_epoch=3, out=str(tmp_path / "run"), verbose=0)
    first_line = caplog.messages[0]
    assert first_line.startswith("Runtime: ") and "precision bf16 (oneDNN graph rewrite)" in first_line
    assert "variables, BN statistics and the loss stay float32" in first_line
    assert bf16_machine["fit"] == [True] and bf16_machine["export"] == [False] and not _option_on()
    assert all(np.isfinite(result.history["loss"])) and np.isfinite(result.test_loss)
    record = json.load(open(os.path.join(result.out, "run.json")))
    assert record["arguments"]["precision"] == "bf16" and record["compute_precision"] == "bf16 (oneDNN graph rewrite)"

    model = bf16_machine["models"][0]
    assert all(v.dtype == "float32" for v in model.weights), "variables stay float32"
    images = _test_images(64)
    served = savedmodel.predict(savedmodel.load(result.export_path), images)
    assert served.dtype == np.float32
    np.testing.assert_allclose(served.sum(-1), 1.0, atol=1e-5)
    # The export is the float32 model: same ops, same float32 weights; only float32 rounding order differs.
    float32 = np.asarray(model(images, training=False))
    np.testing.assert_allclose(served, float32, atol=1e-4)
    # Against the trained model's bf16 graph (what validation ran): ~80 roundings (3 per weighted layer, 1 per BN
    # output, 20 of each), relative error <= 2^-8 each and independent: sqrt(80) * 2^-8 = 3.5% relative on the logits
    # (1 sigma; 0 where this CPU does not rewrite). Softmax's Jacobian has rows of L1 norm 2 p (1 - p) <= 1/2, so
    # |dp| <= |dz|_max / 2; the logits' scale is read from the float32 log-probabilities (logits up to a shift).
    with precision.onednn_bf16():
        bf16 = model.predict(images, verbose=0)
    log_p = np.log(np.maximum(float32, 1e-30))
    logit_scale = max(1.0, float(np.max(np.abs(log_p - log_p.mean(-1, keepdims=True)))))
    tolerance = 0.5 * 4 * np.sqrt(80) * BF16_ROUNDOFF * logit_scale
    assert np.max(np.abs(bf16 - served)) <= tolerance, (np.max(np.abs(bf16 - served)), tolerance)


def test_bf16_fine_tunes_from_a_weights_file(bf16_machine, tmp_path):
    weights_file = str(tmp_path / "resnet20_notop.weights.h5")
    keras.utils.set_random_seed(1)
    registry.get_model("resnet20", include_top=False, weights=None, input_shape=(32, 32, 3),
                       pooling="avg").save_weights(weights_file)
    keras.backend.clear_session()
    result = loop.train("resnet20", "cifar10", data_dir=real_data_dir(), precision="bf16", weights=weights_file,
                        freeze_backbone=1, epochs=1, batch_size=16, steps_per_epoch=2, out=str(tmp_path / "run"),
                        verbose=0)
    assert bf16_machine["fit"] == [True, True], "the frozen-head phase and the full phase both train in bf16"
    assert len(result.history["loss"]) == 2 and all(np.isfinite(result.history["loss"]))
    assert bf16_machine["export"] == [False] and os.path.isfile(os.path.join(result.export_path, "saved_model.pb"))


def test_bf16_on_a_cpu_without_it_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    from keras_convnets.cli import main

    monkeypatch.setattr(machine, "detect_machine", lambda strategy=None: machine.Machine(2, onednn=True))
    out = tmp_path / "run"
    assert main(["train", "resnet20", "--precision", "bf16", "--epochs", "1", "--out", str(out),
                 "--data-dir", real_data_dir()]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "precision bf16 cannot run on a CPU without native bf16" in err
    assert "tensorflow/tensorflow#42422" in err and not out.exists(), "nothing is trained or written"
