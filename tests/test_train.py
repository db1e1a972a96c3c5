"""End to end on the real CIFAR-10 subset: `keras-convnets train resnet20 --epochs 2`, killed with SIGKILL after its
first epoch and re-run with the same command, which resumes at epoch 2. The one run (~1 min on 2 idle cores) serves
every test of this module."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests._data_dir import real_data_dir, requires_cifar10

pytestmark = requires_cifar10

TIMEOUT = 900


def _history(out):
    try:
        with open(os.path.join(out, "history.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("train") / "resnet20")
    env = dict(os.environ, TFDS_DATA_DIR=real_data_dir(), PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)  # the command's own kernel default is part of what is tested
    command = [sys.executable, "-m", "keras_convnets.cli", "train", "resnet20", "--dataset", "cifar10",
               "--epochs", "2", "--out", out]
    log = tmp_path_factory.mktemp("logs") / "first.log"
    with open(log, "w") as f:
        first = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + TIMEOUT
        while len(_history(out)) < 1 and first.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait()
    killed_with = _history(out)
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    return dict(out=out, killed_with=killed_with, first_log=log.read_text(), second=second)


def test_command_exits_0_and_leaves_its_files(run):
    second = run["second"]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    out = run["out"]
    for name in ("run.json", "history.json", "history.csv", "curves.png", "saved_model/saved_model.pb",
                 "saved_model/assets/labels.txt"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert not os.path.exists(os.path.join(out, "backup")), "the backup is removed once training completes"
    assert open(os.path.join(out, "saved_model/assets/labels.txt")).read().split()[:2] == ["airplane", "automobile"]
    assert json.load(open(os.path.join(out, "run.json")))["status"] == "complete"
    first_line = second.stdout.splitlines()[0]
    assert first_line.startswith("Runtime: ") and "(oneDNN kernels)" in first_line, \
        "the first line says what the run chose; the command turns TensorFlow's oneDNN kernels on"


def test_sigkill_after_epoch_1_then_same_command_resumes_at_epoch_2(run):
    assert [row["epoch"] for row in run["killed_with"]] == [1], run["first_log"][-3000:]
    second = run["second"]
    assert "Resuming at epoch 2" in second.stdout, second.stdout[-3000:]
    assert "Epoch 1/2" not in second.stdout and "Epoch 2/2" in second.stdout
    history = _history(run["out"])
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[:1] == run["killed_with"], "the epoch before the kill is kept as it was"
    with open(os.path.join(run["out"], "history.csv")) as f:
        assert [line.split(",")[0] for line in f.read().split()[1:]] == ["1", "2"]


def test_saved_model_scores_raw_uint8_test_images_as_reported(run):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from keras_convnets.serving import saved_model as savedmodel

    assert run["second"].returncode == 0
    reported = float(run["second"].stdout.split("test accuracy:")[1].split()[0])
    images, labels = tfds.as_numpy(tfds.load("cifar10", split="test", data_dir=real_data_dir(), batch_size=-1,
                                             as_supervised=True, download=False))
    assert images.dtype == np.uint8 and len(images) == 1017
    saved_model = tf.saved_model.load(os.path.join(run["out"], "saved_model"))
    probabilities = savedmodel.predict(saved_model, images)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-4)
    accuracy = float((probabilities.argmax(-1) == labels).mean())
    # Chance is 0.10 with a binomial s.d. of 0.0094 on 1,017 images: 0.18 is 8.5 s.d. above it.
    assert accuracy > 0.18, f"test accuracy {accuracy:.3f} after 2 epochs"
    assert abs(accuracy - reported) <= 0.005, (accuracy, reported)


def test_evaluate_and_predict_commands_use_the_export(run, capsys, tmp_path):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from keras_convnets.cli import main

    assert main(["evaluate", run["out"], "--data-dir", real_data_dir()]) == 0
    evaluated = float(capsys.readouterr().out.split("accuracy:")[1].split()[0])
    reported = float(run["second"].stdout.split("test accuracy:")[1].split()[0])
    assert abs(evaluated - reported) <= 0.005
    paths = []
    for i, (image, _) in enumerate(tfds.as_numpy(tfds.load("cifar10", split="test[:2]", data_dir=real_data_dir(),
                                                           as_supervised=True, download=False))):
        paths.append(str(tmp_path / f"{i}.png"))
        tf.io.write_file(paths[-1], tf.io.encode_png(image))
    assert main(["predict", run["out"], *paths, "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(path) for line, path in zip(lines, paths))
    assert all(len(line.split(": ")[1].split(", ")) == 2 for line in lines)


def test_same_out_with_other_arguments_is_refused(run, capsys):
    from keras_convnets.cli import main

    assert main(["train", "resnet20", "--epochs", "3", "--out", run["out"], "--data-dir", real_data_dir()]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a different run" in err and "epochs" in err and len(err.splitlines()) == 1
