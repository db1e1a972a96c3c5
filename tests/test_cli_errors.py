"""One-line errors (exit status 2) where the command used to print a traceback or nothing useful (issue 15, cases 5
and 8; issue 11's training-path bugs). SavedModels here are tiny exports made by the test itself."""

import gc
import json
import os
import re
import shutil
import warnings

import numpy as np
import pytest

from keras_convnets import cli
from tests._data_dir import real_data_dir, requires_cifar10

NOT_DECODABLE = "not a decodable image: JPEG, PNG, GIF, BMP or WebP"


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line_error(status, err, *fragments):
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def tiny_export(path, classes=10, size=32, names=None):
    """A SavedModel of our export format: uint8 images in, ``classes`` probabilities out, named ``names`` (default:
    CIFAR-10's for 10 classes, else ``class0``, ...)."""
    from keras_convnets.data import catalog, preprocessing
    from keras_convnets.models.backend import keras
    from keras_convnets.serving import saved_model as savedmodel

    inner = keras.Sequential([keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(classes, activation="softmax")])
    model = preprocessing.preprocessing_model(inner, catalog.dataset_spec("cifar10"), (size, size, 3))
    if names is None:
        names = CIFAR10_CLASSES if classes == 10 else [f"class{i}" for i in range(classes)]
    return savedmodel.export_saved_model(model, str(path), list(names))


@pytest.fixture(scope="module")
def good_export(tmp_path_factory):
    return tiny_export(tmp_path_factory.mktemp("export") / "saved_model")


# -- OUT problems, numbers, TF_CONFIG, run.json ---------------------------------------------------------------------


@requires_cifar10
def test_out_that_is_a_file_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    (tmp_path / "file").write_text("x")
    one_line_error(*run(capsys, "train", "resnet20", "--out", tmp_path / "file")[::2], "is a file, not a directory")
    one_line_error(*run(capsys, "train", "resnet20", "--out", tmp_path / "file" / "sub")[::2], "is a file")


@requires_cifar10
def test_out_that_is_not_writable_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root ignores permission bits: stand in for them
    one_line_error(*run(capsys, "train", "resnet20", "--out", tmp_path / "out")[::2], "is not writable")


@requires_cifar10
def test_seed_beyond_32_bits_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    one_line_error(*run(capsys, "train", "resnet20", "--seed", 2**32, "--out", tmp_path / "o")[::2],
                   "seed must be an integer in [0, 4294967295]")


@pytest.mark.parametrize("config,message", [("{not json", "TF_CONFIG is not valid JSON"),
                                            ("[1]", "TF_CONFIG must be a JSON object"),
                                            ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"index": "one"}}',
                                             "TF_CONFIG must be a JSON object")])
def test_invalid_tf_config_is_one_line(capsys, tmp_path, monkeypatch, config, message):
    monkeypatch.setenv("TF_CONFIG", config)
    one_line_error(*run(capsys, "train", "resnet20", "--out", tmp_path / "o")[::2], message)


@requires_cifar10
@pytest.mark.parametrize("content", ["[1, 2]", "{broken", '{"arguments": 3}'])
def test_run_json_that_is_not_a_record_is_one_line(capsys, tmp_path, monkeypatch, content):
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    (tmp_path / "run.json").write_text(content)
    one_line_error(*run(capsys, "train", "resnet20", "--out", tmp_path)[::2], "run.json")


def test_evaluate_with_a_run_json_that_is_not_a_record_is_one_line(capsys, tmp_path, good_export):
    shutil.copytree(good_export, tmp_path / "saved_model")
    (tmp_path / "run.json").write_text("[]")
    one_line_error(*run(capsys, "evaluate", tmp_path)[::2], "is not a run record", "--dataset")


def test_plan_refuses_a_non_bool_augmentation(tmp_path):
    from keras_convnets.data import pipelines
    from keras_convnets.training import loop

    with pytest.raises(ValueError, match=r"augmentation \(None: .*\) must be None, True or False"):
        loop.plan("resnet20", augmentation="no", out=str(tmp_path / "o"))
    with pytest.raises(ValueError, match=r"augmentation \(None: .*\) must be None, True or False"):
        pipelines.load_dataset("cifar10", augmentation="no")


def test_input_shape_contradicting_input_tensor_is_refused():
    from keras_convnets import ResNet20
    from keras_convnets.models.backend import keras

    with pytest.raises(ValueError, match=r"input_shape \(64, 64, 3\) contradicts input_tensor's shape \(32, 32, 3\)"):
        ResNet20(input_tensor=keras.Input((32, 32, 3)), input_shape=(64, 64, 3))
    assert ResNet20(input_tensor=keras.Input((32, 32, 3)), input_shape=(32, 32, 3)).input_shape == (None, 32, 32, 3)


# -- data files ------------------------------------------------------------------------------------------------------


@pytest.fixture
def data_copy(tmp_path):
    source = real_data_dir()
    if source is None:
        pytest.skip("the real CIFAR-10 subset is absent")
    shutil.copytree(os.path.join(source, "cifar10"), tmp_path / "tfds" / "cifar10")
    for path in (tmp_path / "tfds").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tmp_path / "tfds"


def test_corrupt_train_tfrecord_is_one_line(capsys, tmp_path, data_copy):
    (record,) = (data_copy / "cifar10" / "3.0.2").glob("cifar10-train.tfrecord*")
    content = bytearray(record.read_bytes())
    content[len(content) // 2:len(content) // 2 + 64] = b"\xff" * 64
    record.write_bytes(bytes(content))
    status, _, err = run(capsys, "train", "resnet20", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "8",
                         "--data-dir", data_copy, "--out", tmp_path / "out")
    one_line_error(status, err, "the dataset's files cannot be read", "corrupt or missing")


def test_missing_test_tfrecord_is_one_line(capsys, data_copy, good_export):
    for record in (data_copy / "cifar10" / "3.0.2").glob("cifar10-test.tfrecord*"):
        record.unlink()
    one_line_error(*run(capsys, "evaluate", good_export, "--dataset", "cifar10", "--data-dir", data_copy)[::2],
                   "files cannot be read", "corrupt or missing")


# -- SavedModels: evaluate checks them against the dataset; broken or foreign ones ----------------------------------


@requires_cifar10
@pytest.mark.parametrize("classes,size,message", [(5, 32, "predicts 5 classes but cifar10 has 10"),
                                                  (100, 32, "predicts 100 classes but cifar10 has 10")])
def test_evaluate_refuses_a_model_that_does_not_fit_the_dataset(capsys, tmp_path, monkeypatch, classes, size,
                                                                message):
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    path = tiny_export(tmp_path / "saved_model", classes, size)
    one_line_error(*run(capsys, "evaluate", path, "--dataset", "cifar10")[::2], message)


@requires_cifar10
def test_evaluate_resizes_the_dataset_to_a_model_of_another_size(capsys, tmp_path, monkeypatch):
    """An export takes images of any size (it resizes them itself): a 64x64 model is scored on cifar10's 32x32
    images seen as its serving signature would see them."""
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    status, out, err = run(capsys, "evaluate", tiny_export(tmp_path / "saved_model", 10, 64), "--dataset", "cifar10")
    assert status == 0, err
    assert "cifar10 test accuracy:" in out and "(1017 images)" in out


@requires_cifar10
def test_evaluate_scores_a_model_that_fits(capsys, monkeypatch, good_export):
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    status, out, err = run(capsys, "evaluate", good_export, "--dataset", "cifar10")
    assert status == 0, err
    assert "cifar10 test accuracy:" in out and "(1017 images)" in out


def _broken(tmp_path, good_export, how):
    path = tmp_path / "broken"
    shutil.copytree(good_export, path)
    if how == "missing variables":
        shutil.rmtree(path / "variables")
    else:
        pb = path / "saved_model.pb"
        pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])
    return path


@pytest.mark.parametrize("how", ["missing variables", "truncated saved_model.pb"])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_broken_saved_model_is_one_line(capsys, tmp_path, good_export, how, command):
    path = _broken(tmp_path, good_export, how)
    argv = [command, path, "--dataset", "cifar10"] if command == "evaluate" else [command, path, "x.png"]
    one_line_error(*run(capsys, *argv)[::2], "is not a loadable SavedModel")


def test_foreign_saved_model_without_class_names_is_one_line(capsys, tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.serve = tf.function(lambda images: {"probabilities": tf.cast(images, tf.float32)},
                               input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.uint8)])
    tf.saved_model.save(module, str(tmp_path / "foreign"), signatures={"serving_default": module.serve})
    one_line_error(*run(capsys, "predict", tmp_path / "foreign", "x.png")[::2],
                   "is not a keras-convnets SavedModel", "class_names")


# -- predict: undecodable files --------------------------------------------------------------------------------------


def test_predict_names_undecodable_files_and_still_classifies_the_good_ones(capsys, tmp_path, good_export):
    import tensorflow as tf

    good = tmp_path / "good.png"
    good.write_bytes(tf.io.encode_png(np.zeros((40, 30, 3), np.uint8)).numpy())
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    status, out, err = run(capsys, "predict", good_export, bad, good, tmp_path / "missing.png")
    assert status == 2
    assert re.match(rf"{re.escape(str(good))}: ({'|'.join(CIFAR10_CLASSES)}) 0\.\d+", out)
    assert err.strip().splitlines() == [f"keras-convnets: error: {bad}: {NOT_DECODABLE}",
                                        f"keras-convnets: error: {tmp_path / 'missing.png'}: no such file"]


# -- bench: the command turns its ValueErrors into one line ---------------------------------------------------------


def test_bench_value_error_is_one_line(capsys, monkeypatch):
    from keras_convnets.cli import bench

    def refuse(args):  # a refusal past argparse's own checks (which already give one line for --batch 0)
        raise ValueError("--size must be at least 4 for resnet20; got 2")

    monkeypatch.setattr(bench, "measure_all", refuse)
    one_line_error(*run(capsys, "bench", "--models", "resnet20")[::2], "--size must be at least 4 for resnet20")


# -- issue 11, training path --------------------------------------------------------------------------------------


@requires_cifar10
def test_training_passes_steps_per_epoch_to_compile_options(tmp_path, monkeypatch):
    from keras_convnets.runtime import settings as runtime_settings
    from keras_convnets.training import loop

    class Stop(Exception):
        pass

    seen = []

    def spy(info=None, steps_per_epoch=None, settings=None):
        assert isinstance(settings, runtime_settings.RuntimeSettings)  # the run's own, passed explicitly
        seen.append(steps_per_epoch)
        raise Stop()

    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    monkeypatch.setattr(runtime_settings, "compile_options", spy)
    for steps in (3, None):
        with pytest.raises(Stop):
            loop.train("resnet20", epochs=1, batch_size=8, steps_per_epoch=steps, out=str(tmp_path / f"o{steps}"))
    # fit runs the run's stream of epochs with steps_per_epoch, capped or not: ceil(5,170 / 8) = 647 uncapped, so
    # whole executions of steps_per_execution fit each epoch
    assert seen == [3, 647]


def test_history_is_read_without_leaking_a_file_handle(tmp_path):
    from keras_convnets.run_directory import RunDirectory
    from keras_convnets.training import callbacks

    (tmp_path / "history.json").write_text(json.dumps([{"epoch": 1, "loss": 1.0}]))
    history = callbacks.epoch_history(RunDirectory(str(tmp_path)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history.on_epoch_begin(0)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert history.rows == []
