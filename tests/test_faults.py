"""Faults a run must survive without losing or misreporting work (issue 15), on the real CIFAR-10 subset with a
small run: ResNet-20, batch 16, 2 steps per epoch, the test split cut to 2 batches. Faults are injected (an
``OSError(ENOSPC)`` at the checkpoint write, a truncated checkpoint, an exception standing for a kill during the
export, a lock held by a live or a dead process) rather than waited for. The README's "What survives what" names
these tests."""

import errno
import json
import os
import subprocess
import sys

import pytest

from keras_convnets import cli, run_directory
from tests._data_dir import real_data_dir, requires_cifar10

pytestmark = requires_cifar10


class Killed(BaseException):
    """Stands for SIGKILL in the middle of a step: nothing after it runs (no ``except Exception`` catches it)."""


@pytest.fixture(autouse=True)
def small_data(monkeypatch):
    from keras_convnets.data import pipelines

    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    evaluation = pipelines.eval_dataset
    monkeypatch.setattr(pipelines, "eval_dataset", lambda *args, **kwargs: evaluation(*args, **kwargs).take(2))


def train(capsys, out, *extra, epochs=2):
    status = cli.main(["train", "resnet20", "--epochs", str(epochs), "--steps-per-epoch", "2", "--batch-size", "16",
                       "--out", str(out), *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def record(out):
    with open(os.path.join(out, "run.json")) as f:
        return json.load(f)


def epochs_in_history(out):
    with open(os.path.join(out, "history.json")) as f:
        return [row["epoch"] for row in json.load(f)]


# -- 1. non-finite numbers, divergence; 2. the complete state ----------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "1e999"])
def test_non_finite_lr_is_refused_by_the_command(capsys, tmp_path, value):
    status, _, err = train(capsys, tmp_path / "out", "--lr", value)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "lr must be a finite number > 0" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argument", ["lr", "weight_decay"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused_by_plan(tmp_path, argument, value):
    from keras_convnets.training import loop

    with pytest.raises(ValueError, match=f"{argument} must be a finite number"):
        loop.plan("resnet20", out=str(tmp_path / "out"), **{argument: value})


def test_integer_arguments_say_integer_bounds(tmp_path):
    from keras_convnets.training import loop

    with pytest.raises(ValueError, match=r"^epochs must be a positive integer; got 0$"):
        loop.plan("resnet20", epochs=0, out=str(tmp_path / "out"))


def test_divergence_is_one_line_recorded_then_a_lower_lr_completes_and_a_rerun_says_complete(capsys, tmp_path):
    out = tmp_path / "run"
    status, _, err = train(capsys, out, "--lr", "1e30", epochs=2)
    assert status == 1, err
    assert err.strip().splitlines() == ["keras-convnets: error: loss became NaN at epoch 1; lower --lr (it was 1e+30)"]
    diverged = record(out)
    assert diverged["status"] == "diverged" and diverged["diverged_at_epoch"] == 1
    assert not (out / "backup").exists() and not (out / "saved_model").exists()
    assert not (out / run_directory.LOCK_FILE).exists()

    # A diverged OUT is free: the same command with a lower learning rate starts over and completes.
    status, stdout, err = train(capsys, out, "--lr", "0.01")
    assert status == 0, err
    assert "Resuming" not in stdout
    complete = record(out)
    assert complete["status"] == "complete" and complete["arguments"]["lr"] == 0.01
    assert epochs_in_history(out) == [1, 2]
    assert not (out / "backup").exists(), "the backup goes once the export has landed"

    # Re-running the completed run's exact command says so and changes nothing.
    before = {name: (out / name).read_bytes() for name in ("run.json", "history.json", "history.csv")}
    status, stdout, err = train(capsys, out, "--lr", "0.01")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"the run in {out} is complete (test accuracy" in err and "--force" in err
    assert {name: (out / name).read_bytes() for name in before} == before
    # --force is what trains it again.
    from keras_convnets.training import loop

    assert loop.plan("resnet20", epochs=2, steps_per_epoch=2, batch_size=16, lr=0.01, out=str(out), force=True)


def test_kill_before_training_then_the_same_command_runs(capsys, tmp_path, monkeypatch):
    from keras_convnets.training import loop

    out = tmp_path / "run"
    fit = loop._fit

    def killed_fit(*args, **kwargs):
        raise Killed()

    monkeypatch.setattr(loop, "_fit", killed_fit)
    with pytest.raises(Killed):
        train(capsys, out, epochs=1)
    assert record(out)["status"] == "running" and not (out / "history.json").exists()
    monkeypatch.setattr(loop, "_fit", fit)
    status, _, err = train(capsys, out, epochs=1)
    assert status == 0, err
    assert record(out)["status"] == "complete" and epochs_in_history(out) == [1]


def test_disk_full_before_training_is_one_line(capsys, tmp_path, monkeypatch):
    def full(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(run_directory, "write_json", full)
    status, _, err = train(capsys, tmp_path / "run")
    assert status == 1
    expected = (f"keras-convnets: error: {os.strerror(errno.ENOSPC)}: {tmp_path / 'run'}/run.json; re-run the same "
                "command to resume from the last finished epoch")
    assert err.strip().splitlines() == [expected]
    assert not (tmp_path / "run" / run_directory.LOCK_FILE).exists()


# -- 3. atomic checkpoints -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def disk_full_at_epoch_3(tmp_path_factory):
    """A 3-epoch run whose third checkpoint write fails with ENOSPC after writing part of the file."""
    from keras_convnets.models.backend import keras

    out = tmp_path_factory.mktemp("enospc") / "run"
    save_weights, calls = keras.Model.save_weights, []

    def failing_save(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) == 3:
            with open(filepath, "wb") as f:
                f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filepath)
        return save_weights(self, filepath, *args, **kwargs)

    capsys = _Capture()
    keras.Model.save_weights = failing_save
    try:
        result = capsys.run(lambda: cli.main(["train", "resnet20", "--epochs", "3", "--steps-per-epoch", "2",
                                              "--batch-size", "16", "--out", str(out)]))
    finally:
        keras.Model.save_weights = save_weights
    return out, result


class _Capture:
    """stdout/stderr of a call made from a module-scoped fixture (pytest's capsys is function-scoped)."""

    def run(self, fn):
        import contextlib
        import io

        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = fn()
        return status, stdout.getvalue(), stderr.getvalue()


def test_disk_full_during_checkpoint_write_keeps_the_previous_checkpoints(disk_full_at_epoch_3):
    from keras_convnets.training import checkpoint

    out, (status, _, err) = disk_full_at_epoch_3
    assert status == 1
    (line,) = err.strip().splitlines()
    assert line.startswith(f"keras-convnets: error: {os.strerror(errno.ENOSPC)}: {out / 'backup'}")
    assert line.endswith("; re-run the same command to resume from the last finished epoch")
    assert sorted(os.listdir(out / "backup")) == ["epoch-00001", "epoch-00002"], "no temporary directory is left"
    assert [epoch for epoch, _ in checkpoint._complete_checkpoints(str(out / "backup"))] == [2, 1]
    assert record(out)["status"] == "running"
    assert not (out / run_directory.LOCK_FILE).exists()


def test_truncated_checkpoint_resumes_from_the_previous_epoch(capsys, disk_full_at_epoch_3):
    out, _ = disk_full_at_epoch_3
    weights = out / "backup" / "epoch-00002" / "weights.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a write cut short
    status, stdout, err = train(capsys, out, epochs=3)
    assert status == 0, err
    assert "epoch-00002 cannot be loaded" in stdout and "Resuming at epoch 2" in stdout
    assert epochs_in_history(out) == [1, 2, 3]
    assert record(out)["status"] == "complete"


# -- 7. export: the backup stays until it has landed; leftovers are cleaned ----------------------------------------


def test_kill_during_export_resumes_without_retraining_and_cleans_leftovers(capsys, tmp_path, monkeypatch):
    """Also: a run's test figures are its last epoch's validation (no second pass over the test set after ``fit``),
    and a resumed run with no epoch left evaluates the restored weights instead, to the same accuracy."""
    import tensorflow as tf

    from keras_convnets.models.backend import keras

    out = tmp_path / "run"
    save = tf.saved_model.save
    fit, evaluate = keras.Model.fit, keras.Model.evaluate
    in_fit, evaluations_after_fit = [], []

    def spy_fit(model, *args, **kwargs):
        in_fit.append(True)
        try:
            return fit(model, *args, **kwargs)
        finally:
            in_fit.pop()

    def spy_evaluate(model, *args, **kwargs):
        if not in_fit:  # fit's own per-epoch validation calls evaluate too
            evaluations_after_fit.append(True)
        return evaluate(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    monkeypatch.setattr(keras.Model, "evaluate", spy_evaluate)

    def killed_save(*args, **kwargs):
        os.makedirs(out / ".saved_model.tmp-killed")  # what a real kill leaves behind
        raise Killed()

    monkeypatch.setattr(tf.saved_model, "save", killed_save)
    with pytest.raises(Killed):
        train(capsys, out, epochs=1)
    assert evaluations_after_fit == [], "the epoch's validation is the run's test figure"
    assert record(out)["status"] == "running"
    assert os.listdir(out / "backup") == ["epoch-00001"], "the backup is kept until the export has landed"
    history = (out / "history.json").read_text()

    monkeypatch.setattr(tf.saved_model, "save", save)
    status, stdout, err = train(capsys, out, epochs=1)
    assert status == 0, err
    assert "Epoch 1/1" not in stdout, "no epoch is trained again"
    assert (out / "history.json").read_text() == history
    assert (out / "saved_model" / "saved_model.pb").is_file()
    assert not [name for name in os.listdir(out) if name.startswith(".saved_model.")]
    assert not (out / "backup").exists() and record(out)["status"] == "complete"
    assert evaluations_after_fit == [True], "with no epoch left, the restored weights are evaluated once"
    assert record(out)["test_accuracy"] == json.loads(history)[-1]["val_accuracy"]


def test_saved_model_left_aside_by_a_kill_between_the_renames_is_restored(tmp_path):
    from keras_convnets import publish

    path = tmp_path / "saved_model"
    aside = tmp_path / ".saved_model.old-abc" / "previous"
    aside.mkdir(parents=True)
    (aside / "saved_model.pb").write_bytes(b"model")
    (tmp_path / ".saved_model.tmp-xyz").mkdir()
    publish.recover(str(path))
    assert (path / "saved_model.pb").read_bytes() == b"model"
    assert sorted(os.listdir(tmp_path)) == ["saved_model"]


# -- 6. one run per OUT --------------------------------------------------------------------------------------------


def test_lock_of_a_live_process_is_refused_and_a_dead_ones_is_taken_over(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / run_directory.LOCK_FILE).write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename}))
        with pytest.raises(run_directory.RunLockedError, match=f"in use by process {sleeper.pid} on "):
            run_directory.acquire(str(tmp_path))
    finally:
        sleeper.kill()
        sleeper.wait()
    path = run_directory.acquire(str(tmp_path))  # the owner is gone: a stale lock
    assert json.loads((tmp_path / run_directory.LOCK_FILE).read_text())["pid"] == os.getpid()
    run_directory.release(path)
    assert not (tmp_path / run_directory.LOCK_FILE).exists()


def test_second_train_into_a_locked_out_is_one_line_and_touches_nothing(capsys, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / run_directory.LOCK_FILE).write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename}))
        status, _, err = train(capsys, out)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"{out} is in use by process {sleeper.pid}" in err
    assert sorted(os.listdir(out)) == [run_directory.LOCK_FILE]


# -- 8. a resumed run sees the uninterrupted run's data; a checkpoint is one unit ---------------------------------


def test_a_resumed_run_sees_the_uninterrupted_runs_batches_and_a_damaged_checkpoint_loads_nothing(
        capsys, tmp_path, monkeypatch):
    """A seeded run (with an EMA) killed after epoch 1 and resumed trains epoch 2 on the batches the uninterrupted
    run trained it on (hashes of the pipelines' batches, not the weights). The same killed run with its checkpoint's
    EMA state lost loads none of that checkpoint: it says so and starts over at epoch 1, and its history is the
    epochs trained."""
    import hashlib
    import shutil

    from keras_convnets.data import pipelines
    from keras_convnets.training import callbacks, ema

    made = []
    pipeline = pipelines.train_dataset

    def recorded(*args, **kwargs):
        made.append((kwargs["first_epoch"], pipeline(*args, **kwargs)))
        return made[-1][1]

    def hashes(stream):
        return [hashlib.sha256(images.numpy().tobytes()).hexdigest() for images, _ in stream]

    monkeypatch.setattr(pipelines, "train_dataset", recorded)
    status, _, err = train(capsys, tmp_path / "whole", "--ema", "0.99")
    assert status == 0, err
    (first, whole), = made
    assert first == 0

    guard = callbacks.divergence_guard

    def killing_guard():
        class KillAtEpoch2(type(guard())):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    raise Killed()
                super().on_epoch_begin(epoch, logs)
        return KillAtEpoch2()

    monkeypatch.setattr(callbacks, "divergence_guard", killing_guard)
    with pytest.raises(Killed):
        train(capsys, tmp_path / "killed", "--ema", "0.99")
    monkeypatch.setattr(callbacks, "divergence_guard", guard)
    shutil.copytree(tmp_path / "killed", tmp_path / "damaged")
    os.remove(tmp_path / "damaged" / "backup" / "epoch-00001" / ema.STATE_FILE)

    made.clear()
    status, stdout, err = train(capsys, tmp_path / "killed", "--ema", "0.99")
    assert status == 0, err
    (first, resumed), = made
    assert first == 1 and "Resuming at epoch 2" in stdout
    assert hashes(resumed) == hashes(whole)[2:], "epoch 2's batches are the uninterrupted run's"

    made.clear()
    status, stdout, err = train(capsys, tmp_path / "damaged", "--ema", "0.99")
    assert status == 0, err
    assert "epoch-00001 cannot be loaded" in stdout and "ema.npz is missing" in stdout
    (first, _), = made
    assert first == 0 and "Epoch 1/2" in stdout and stdout.count("Epoch ") == 2
    assert epochs_in_history(tmp_path / "damaged") == [1, 2]
