"""Export, convert, evaluate and resume keep the promise training keeps: nothing lost, nothing misreported.

One test per case found by trying the commands as a user would: an ``--out`` that is someone else's folder or file
is refused before anything is done; every writer publishes through :mod:`keras_convnets.publish` (SIGKILLed
mid-write, the previous output stays loadable and byte-identical, and the next run leaves no temporary); a model and
its sidecars are one unit; a checkpoint is one unit; ``evaluate`` compares class names; the serving signatures say
what they take. SavedModels here are tiny exports made by the tests (tests/test_cli_errors.py's ``tiny_export``).
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import types

import numpy as np
import pytest

from keras_convnets import cli
from keras_convnets.serving import formats
from tests._data_dir import real_data_dir, requires_cifar10
from tests._extras import needs_format
from tests.test_cli_errors import CIFAR10_CLASSES, one_line_error, run, tiny_export


def _tree(path):
    """``{relative path: sha256}`` of every file under ``path`` (a file: itself)."""
    if os.path.isfile(path):
        return {"": hashlib.sha256(open(path, "rb").read()).hexdigest()}
    return {os.path.relpath(os.path.join(root, name), path):
            hashlib.sha256(open(os.path.join(root, name), "rb").read()).hexdigest()
            for root, _, names in os.walk(path) for name in names}


def _temporaries(folder):
    return sorted(name for name in os.listdir(folder) if re.match(r"^\..*\.(tmp|old)-", name))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as ``train`` leaves it: run.json (cifar10, complete), history, saved_model/."""
    out = tmp_path_factory.mktemp("runs") / "base"
    tiny_export(out / "saved_model")
    (out / "run.json").write_text(json.dumps({"status": "complete", "arguments": {"dataset": "cifar10"},
                                              "data": {"dataset": "cifar10"}}))
    (out / "history.json").write_text("[]")
    return out


# -------------------------------------------------------------------------------- 1-3: folders not ours --

def test_export_refuses_a_users_folder_and_keeps_its_files(capsys, tmp_path, run_dir):
    mydocs = tmp_path / "mydocs"
    mydocs.mkdir()
    (mydocs / "notes.txt").write_text("precious")
    one_line_error(*run(capsys, "export", run_dir, "--format", "saved_model", "--out", mydocs)[::2],
                   "mydocs exists and is not a SavedModel written by keras-convnets (it holds notes.txt)",
                   "choose another --out")
    assert sorted(os.listdir(mydocs)) == ["notes.txt"] and (mydocs / "notes.txt").read_text() == "precious"


def test_export_into_its_own_run_directory_is_refused_and_the_run_is_untouched(capsys, run_dir):
    before = _tree(str(run_dir))
    one_line_error(*run(capsys, "export", run_dir, "--format", "saved_model", "--out", run_dir)[::2],
                   "is a training run directory (it holds run.json)")
    assert _tree(str(run_dir)) == before


def test_convert_refuses_an_export_folder_it_did_not_write_before_any_work(capsys, tmp_path):
    keepme = tmp_path / "keepme"
    keepme.mkdir()
    (keepme / "thesis.tex").write_text("years of work")
    one_line_error(*run(capsys, "convert", tmp_path / "resnet18.pth", "resnet18", "--out", tmp_path / "a.weights.h5",
                        "--export", keepme)[::2],
                   "keepme exists and is not a SavedModel written by keras-convnets", "choose another --export")
    assert (keepme / "thesis.tex").read_text() == "years of work"
    assert sorted(os.listdir(tmp_path)) == ["keepme"], "nothing was written"


def test_a_weights_file_this_package_did_not_write_is_not_overwritten(capsys, tmp_path):
    (tmp_path / "theirs.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n someone else's")
    one_line_error(*run(capsys, "convert", tmp_path / "x.pth", "resnet18", "--out",
                        tmp_path / "theirs.weights.h5")[::2], "is not a Keras weights file written by keras-convnets")


# ----------------------------------------------------------------------------------- 4: SIGKILL mid-write --

#: Runs ``keras-convnets ARGS`` in a process that SIGKILLs itself in the middle of writing its output: ``weights``
#: (``convert``: the weights file half written; the checkpoint's tensors are not read, any model's weights do),
#: ``copytree`` (``export --format saved_model``: killed once its first sub-folder is copied) or ``onnx`` (the ONNX
#: file's first kilobyte).
KILLED_MID_WRITE = r"""
import os, shutil, signal, sys, types

point = sys.argv[1]


def kill():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if point == "weights":
    import keras
    from keras_convnets.models import torch_weights

    save = keras.Model.save_weights

    def save_weights(self, path, *args, **kwargs):
        save(self, path, *args, **kwargs)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        kill()

    keras.Model.save_weights = save_weights
    torch_weights.load_checkpoint = lambda model, source, **kwargs: types.SimpleNamespace(loaded=0)
elif point == "copytree":
    copytree = shutil.copytree

    def killed_copy(source, target, *args, **kwargs):  # the first folder copied (assets/), then the kill
        copytree(source, target, *args, **kwargs)
        kill()

    shutil.copytree = killed_copy
elif point == "onnx":
    import onnx

    def killed_save(proto, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(proto.SerializeToString()[:1024])
        kill()

    onnx.save = killed_save
from keras_convnets import cli

sys.exit(cli.main(sys.argv[2:]))
"""


def _killed(point, *argv):
    done = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, point, *[str(a) for a in argv]],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


def _no_checkpoint(monkeypatch):
    from keras_convnets.models import torch_weights

    monkeypatch.setattr(torch_weights, "load_checkpoint",
                        lambda model, source, **kwargs: types.SimpleNamespace(loaded=0))


def test_convert_killed_mid_write_keeps_the_old_weights_loadable_and_byte_identical(capsys, tmp_path, monkeypatch):
    import keras_convnets as kc

    _no_checkpoint(monkeypatch)
    (tmp_path / "x.pth").write_bytes(b"stands for a checkpoint")
    good = tmp_path / "missing" / "folders" / "good.weights.h5"  # a missing folder is created, as export does
    status, _, err = run(capsys, "convert", tmp_path / "x.pth", "resnet18", "--out", good)
    assert status == 0, err
    before = _tree(str(good))

    _killed("weights", "convert", tmp_path / "x.pth", "resnet18", "--out", good)
    assert _tree(str(good)) == before, "the previous file is byte-identical"
    kc.ResNet18(weights=None).load_weights(str(good))  # and loads
    assert _temporaries(good.parent), "the killed process left its temporary folder"

    status, _, err = run(capsys, "convert", tmp_path / "x.pth", "resnet18", "--out", good)
    assert status == 0, err
    assert _temporaries(good.parent) == [], "the next run removes what the killed one left"


@pytest.mark.parametrize("format, point, name", [("saved_model", "copytree", "copy"), ("onnx", "onnx", "m.onnx")])
def test_export_killed_mid_write_keeps_the_old_file_loadable_and_byte_identical(tmp_path, run_dir, format, point,
                                                                                name):
    needs_format(format)
    out = tmp_path / name
    formats.export(str(run_dir), format, str(out))
    before = {path: _tree(path) for path in formats.FORMATS[format].files(str(out))}
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    expected = formats.runner(str(out))(images)

    _killed(point, "export", run_dir, "--format", format, "--out", out)
    assert {path: _tree(path) for path in before} == before, "the previous export is byte-identical"
    np.testing.assert_array_equal(formats.runner(str(out))(images), expected)
    assert _temporaries(tmp_path)

    formats.export(str(run_dir), format, str(out))
    assert _temporaries(tmp_path) == []


# ------------------------------------------------------------------------ 5: a checkpoint is one unit --

def _small_model(seed):
    from keras_convnets.models.backend import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
    return model


def test_a_checkpoint_missing_a_part_loads_nothing_of_it(tmp_path):
    from keras_convnets.training import checkpoint, ema

    x, y = np.ones((8, 4), np.float32), np.zeros((8, 3), np.float32)
    trained, averaging = _small_model(0), ema.callback(0.9)
    trained.fit(x, y, epochs=2, batch_size=4, verbose=0,
                callbacks=[checkpoint.backup(str(tmp_path), extras=[averaging]), averaging])
    assert sorted(os.listdir(tmp_path)) == ["epoch-00001", "epoch-00002"]

    def fresh():
        model = _small_model(1)
        return model, [v.numpy() for v in model.weights], ema.callback(0.9)

    model, initial, extra = fresh()
    assert checkpoint.restore(model, str(tmp_path), [extra]) == 2, "whole: the newest loads"
    saved = _small_model(2)
    saved.optimizer.build(saved.trainable_variables)
    saved.load_weights(str(tmp_path / "epoch-00002" / checkpoint.WEIGHTS))
    np.testing.assert_array_equal(model.get_weights()[0], saved.get_weights()[0])
    assert not np.array_equal(model.get_weights()[0], initial[0])

    os.remove(tmp_path / "epoch-00002" / ema.STATE_FILE)  # one part of the newest lost
    weights = tmp_path / "epoch-00001" / checkpoint.WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # the previous one truncated
    model, initial, extra = fresh()
    assert checkpoint.restore(model, str(tmp_path), [extra]) == 0
    for got, want in zip(model.weights, initial):  # not the damaged checkpoints' weights: the initial ones
        np.testing.assert_array_equal(got.numpy(), want)
    assert int(model.optimizer.iterations.numpy()) == 0 and extra.shadow is None


def test_a_weights_file_that_fails_while_loading_puts_everything_back(tmp_path, monkeypatch):
    from keras_convnets.training import checkpoint

    trained = _small_model(0)
    trained.fit(np.ones((4, 4)), np.zeros((4, 3)), epochs=1, verbose=0,
                callbacks=[checkpoint.backup(str(tmp_path))])
    model = _small_model(1)
    model.optimizer.build(model.trainable_variables)
    before = [v.numpy() for v in model.weights + model.optimizer.variables]
    load = type(model).load_weights

    def half_loaded(self, path, *args, **kwargs):
        self.weights[0].assign(np.full(self.weights[0].shape, 7.0, np.float32))  # assigned, then the read fails
        raise OSError("read error")

    monkeypatch.setattr(type(model), "load_weights", half_loaded)
    assert checkpoint.restore(model, str(tmp_path)) == 0
    for got, want in zip(model.weights + model.optimizer.variables, before):
        np.testing.assert_array_equal(got.numpy(), want)
    monkeypatch.setattr(type(model), "load_weights", load)


# --------------------------------------------------------------------------------- 6: evaluate's classes --

def _folder(root, classes, per_class=2, size=32):
    from tests.test_datasets import _write_png

    rng = np.random.default_rng(0)
    for name in classes:
        for i in range(per_class):
            _write_png(str(root / name / f"{i}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


def test_evaluate_refuses_a_model_of_other_classes_and_names_one(capsys, tmp_path):
    model = tiny_export(tmp_path / "sm", 3, names=["cat", "dog", "ship"])
    other = _folder(tmp_path / "other3", ["car", "frog", "ship"])
    one_line_error(*run(capsys, "evaluate", model, "--dataset", other)[::2],
                   "was trained on other classes than", "(class 'cat' vs 'car', 2 of 3 differ)")
    same = _folder(tmp_path / "mine", ["cat", "dog", "ship"])
    status, out, err = run(capsys, "evaluate", model, "--dataset", same)
    assert status == 0, err
    assert out.startswith(f"{same} held out part accuracy: ")  # the part it scored, named


def test_evaluate_names_the_tfds_split_it_scored(capsys, run_dir, monkeypatch):
    if real_data_dir() is None:
        pytest.skip("real CIFAR-10 data is absent")
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    status, out, err = run(capsys, "evaluate", run_dir)
    assert status == 0, err
    assert out.startswith("cifar10 test accuracy: ") and "(1017 images)" in out


# ------------------------------------------------------------------------------ 7: model and sidecars --

def test_a_model_file_and_its_sidecars_are_one_unit(capsys, tmp_path):
    needs_format("onnx")
    needs_format("openvino")
    three = tiny_export(tmp_path / "a", 3, names=["cat", "dog", "ship"])
    ten = tiny_export(tmp_path / "b", 10)
    assert run(capsys, "export", three, "--format", "onnx", "--out", tmp_path / "m.onnx")[0] == 0
    labels = (tmp_path / "m.labels.txt").read_text()
    one_line_error(*run(capsys, "export", ten, "--format", "openvino", "--out", tmp_path / "m.xml")[::2],
                   "m.onnx is beside", "both would own", "m.labels.txt", "choose another --out name")
    assert (tmp_path / "m.labels.txt").read_text() == labels == "cat\ndog\nship\n"
    assert not (tmp_path / "m.xml").exists() and not (tmp_path / "m.bin").exists()
    # a labels file with no model of ours beside it is somebody's: not overwritten either
    (tmp_path / "n.labels.txt").write_text("my notes\n")
    one_line_error(*run(capsys, "export", ten, "--format", "onnx", "--out", tmp_path / "n.onnx")[::2],
                   "n.labels.txt exists and is not the class names of the onnx model")
    assert (tmp_path / "n.labels.txt").read_text() == "my notes\n"


# --------------------------------------------------------------------------------- 8: LiteRT and float16 --

def test_litert_of_a_float16_model_is_refused_in_one_line(capsys, tmp_path):
    needs_format("litert")
    from keras_convnets.data import catalog, preprocessing
    from keras_convnets.models.backend import keras
    from keras_convnets.serving import saved_model as savedmodel

    inner = keras.Sequential([keras.layers.Conv2D(4, 3, dtype="mixed_float16"), keras.layers.GlobalAveragePooling2D(
        dtype="mixed_float16"), keras.layers.Dense(10, dtype="mixed_float16"), keras.layers.Activation(
        "softmax", dtype="float32")])
    model = preprocessing.preprocessing_model(inner, catalog.dataset_spec("cifar10"), (32, 32, 3))
    source = savedmodel.export_saved_model(model, str(tmp_path / "sm"), CIFAR10_CLASSES)
    status, out, err = run(capsys, "export", source, "--format", "litert", "--out", tmp_path / "m.tflite")
    one_line_error(status, err, "computes in float16 or bfloat16", "export --format onnx or openvino")
    assert not (tmp_path / "m.tflite").exists() and _temporaries(tmp_path) == []


# ------------------------------------------------------------------------------------- the vague ones --

def test_int8_calibration_on_a_small_folder_takes_fewer_images_and_names_both_flags(capsys, tmp_path):
    needs_format("litert")
    folder = _folder(tmp_path / "photos", ["cat", "dog", "ship"], per_class=11)  # 33 images
    model = tiny_export(tmp_path / "sm", 3, names=["cat", "dog", "ship"])
    status, _, err = run(capsys, "export", model, "--format", "litert", "--quantize", "int8", "--out",
                         tmp_path / "q.tflite", "--calibration-dataset", folder)
    # 33 images, of which the folder's held-out tenth is kept for evaluation: 30 training images
    one_line_error(status, err, "int8 calibration uses 256 training images", "kept part split has 30",
                   "pass --calibration-images below 30", "another --calibration-dataset")
    result = formats.export(model, "litert", str(tmp_path / "q.tflite"), quantize="int8", calibration_images=16,
                           calibration_dataset=str(folder))
    assert result.calibration.startswith("16 images of ") and result.check_images == 14


def test_serving_default_says_what_it_takes(run_dir):
    import tensorflow as tf

    from keras_convnets.serving import saved_model as savedmodel

    serve = savedmodel.load(str(run_dir / "saved_model")).signatures["serving_default"]
    for images in (np.zeros((32, 32, 3), np.uint8), np.zeros((1, 0, 32, 3), np.uint8)):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=re.escape("images must be uint8 [batch, height, width, channels] with height and "
                                           "width >= 1 and 1 to 4 channels; got shape")):
            serve(images=tf.constant(images))
    assert serve(images=tf.zeros((0, 5, 5, 3), tf.uint8))["probabilities"].shape == (0, 10)


def test_serving_bytes_names_a_truncated_file_and_a_scalar(run_dir):
    import tensorflow as tf

    from keras_convnets.serving import saved_model as savedmodel

    serve_bytes = savedmodel.load(str(run_dir / "saved_model")).signatures[savedmodel.SERVING_BYTES]
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    png, jpeg = tf.io.encode_png(image).numpy(), tf.io.encode_jpeg(image).numpy()
    bmp = b"BM" + (10_000).to_bytes(4, "little") + b"\0" * 50  # says 10,000 bytes, has 56
    for index, batch in ((1, [png, jpeg[:-100]]), (0, [png[:-20]]), (2, [png, jpeg, bmp])):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=rf"image_bytes item\] \[{index}\] \[is truncated"):
            serve_bytes(image_bytes=tf.constant(batch))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes must be a 1-D batch"):
        serve_bytes(image_bytes=tf.constant(png))
    assert serve_bytes(image_bytes=tf.constant([png, jpeg]))["probabilities"].shape == (2, 10)


def test_predict_says_a_directory_is_a_directory(capsys, tmp_path, run_dir):
    (tmp_path / "somedir").mkdir()
    status, _, err = run(capsys, "predict", run_dir, tmp_path / "somedir")
    assert status == 2 and "somedir: is a directory, not an image file" in err


def test_train_takes_a_name_and_the_modern_options_as_keywords():
    import keras_convnets as kc
    from keras_convnets.training.config import config_from

    with pytest.raises(TypeError, match=r"model must be a registered model name such as 'resnet20' .* got a "
                                        r"Functional named 'resnet20'"):
        kc.train(kc.ResNet20())
    config = config_from("resnet20", "cifar10", {"ema": 0.9, "regularization": {"mixup": 0.2}})
    assert config.regularization == {"mixup": 0.2, "ema": 0.9}
    with pytest.raises(TypeError, match=r"'emma' \(did you mean 'ema'\?\)"):
        config_from("resnet20", "cifar10", {"emma": 0.9})


@requires_cifar10
def test_a_different_run_in_out_names_the_field_and_both_values(tmp_path):
    from keras_convnets import run_directory
    from keras_convnets.training import loop

    out = tmp_path / "run"
    out.mkdir()
    first = loop.plan("resnet20", out=str(out), data_dir=real_data_dir(), ema=0.99)
    (out / "run.json").write_text(json.dumps({"status": "running", "arguments": first.arguments}))
    expected = "(regularization.ema: 0.99 in run.json, 0.9 now)"
    with pytest.raises(run_directory.RunMismatchError, match=re.escape(expected)):
        loop.plan("resnet20", out=str(out), data_dir=real_data_dir(), ema=0.9)


def test_randaugment_replaces_the_modern_trivialaugment_in_the_api_as_on_the_command_line():
    from keras_convnets.training import plan

    api = plan.regularization("modern", {"randaugment": (2, 9)})
    assert api.randaugment == (2, 9) and not api.trivialaugment
    with pytest.raises(ValueError, match="choose one"):
        plan.regularization("modern", {"randaugment": (2, 9), "trivialaugment": True})


def test_an_export_error_while_converting_is_one_line(capsys, tmp_path, monkeypatch):
    from keras_convnets.serving import convert
    from keras_convnets.serving import saved_model as savedmodel

    _no_checkpoint(monkeypatch)

    def fails(*args, **kwargs):
        raise savedmodel.ExportError("the reloaded SavedModel does not reproduce the model (max difference 1)")

    monkeypatch.setattr(convert, "export_saved_model", fails)
    (tmp_path / "x.pth").write_bytes(b"x")
    status, _, err = run(capsys, "convert", tmp_path / "x.pth", "resnet18", "--out", tmp_path / "w.weights.h5",
                         "--export", tmp_path / "sm")
    assert status == 1 and err.strip().splitlines() == [
        "keras-convnets: error: the reloaded SavedModel does not reproduce the model (max difference 1)"]


# ------------------------------------------------------------------------ a resumed run's data order --

@requires_cifar10
def test_epoch_e_of_a_seeded_run_is_the_same_batches_from_any_first_epoch():
    """Every draw of epoch ``e`` (shuffle, pad-crop-flip, the modern per-image ops, mixup / cutmix) depends on
    ``(seed, e)`` alone: the stream started at epoch 1 (a resumed run's) gives the uninterrupted stream's epoch-2
    batches, byte for byte."""
    from keras_convnets.data import catalog, pipelines
    from keras_convnets.training import recipes

    description = catalog.describe("cifar10", data_dir=real_data_dir())
    regularization = recipes.Regularization(trivialaugment=True, random_erasing=0.5, mixup=0.2, cutmix=1.0)
    options = dict(seed=3, epochs=3, steps_per_epoch=2, per_image=regularization.per_image_op(),
                   per_batch=regularization.per_batch_op(10))

    def hashes(stream):
        return [hashlib.sha256(images.numpy().tobytes() + labels.numpy().tobytes()).hexdigest()
                for images, labels in stream]

    whole = hashes(pipelines.train_dataset(description, 16, first_epoch=0, **options))
    resumed = hashes(pipelines.train_dataset(description, 16, first_epoch=1, **options))
    assert len(whole) == 6 and resumed == whole[2:]
    assert len(set(whole)) == 6, "each epoch is a new order"
    other_seed = hashes(pipelines.train_dataset(description, 16, first_epoch=1, **{**options, "seed": 4}))
    assert other_seed[0] != whole[2]


# ------------------------------------------------------------------------------ the formats are one table --

def test_a_format_registered_with_one_entry_exports_through_the_command(capsys, tmp_path, run_dir, monkeypatch):
    """A new export format is one :class:`~keras_convnets.serving.formats.Format`: the command line's choices and
    help come from the table, and the publisher, the labels file and the check in its runtime come with it."""
    from keras_convnets import publish
    from keras_convnets.serving import saved_model as savedmodel

    def write(source, path, quantize=None, calibration=None):  # a file that names the SavedModel it runs
        with open(path, "w") as f:
            f.write(f"fake-format {source.directory}\n")

    def runner(path):
        source = open(path).read().split(" ", 1)[1].strip()
        loaded = savedmodel.load(source)
        return lambda images: savedmodel.predict(loaded, images, signature=savedmodel.PREPROCESSED)

    fake = formats.Format("fake", "a test format", write, runner, publish.Kind(
        "a fake file", lambda path: open(path).read().startswith("fake-format")), suffix=".fake")
    monkeypatch.setitem(formats.FORMATS, "fake", fake)
    status, out, err = run(capsys, "export", run_dir, "--format", "fake", "--out", tmp_path / "m.fake")
    assert status == 0, err
    assert "wrote" in out and "top-1 agreement 100.0%" in out
    assert sorted(os.listdir(tmp_path)) == ["m.fake", "m.labels.txt"]
    assert (tmp_path / "m.labels.txt").read_text().splitlines() == CIFAR10_CLASSES
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    assert "fake: a test format" in capsys.readouterr().out
