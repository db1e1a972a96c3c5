"""Distributed training on this machine: strategy choice, mirrored parity with sync_bn over two logical CPU devices
(Keras 3 and tf-keras), a real two-worker MultiWorkerMirroredStrategy run of the `keras-convnets train` command on
the CIFAR-10 subset, and (slow-marked) one worker killed mid-run and restarted. Runs that need TensorFlow configured
before it starts happen in subprocesses, each bounded by a timeout."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_convnets.runtime import distribute
from tests._data_dir import real_data_dir, requires_cifar10
from tests._multiworker import Cluster
from tests.test_cli import _error as _one_line_error  # exit 2, one line, no traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 900  # generous: the machine is shared


def _tf_config(workers, index, kind="worker", chief=False):
    cluster = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:1999"]
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})}


@pytest.mark.parametrize("name, environ, legacy", [
    ("multi-worker", {}, True),
    ("auto", _tf_config(2, 0), True),
    ("auto", _tf_config(1, 0), False),
    ("auto", {}, False),
    ("auto", {**_tf_config(2, 0), "TPU_NAME": "my-tpu"}, False),  # a TPU wins over the cluster
    ("mirrored", _tf_config(2, 0), False),
])
def test_which_strategies_need_tf_keras_is_decided_from_the_environment(name, environ, legacy):
    assert distribute.needs_legacy_keras(name, environ) is legacy


def test_chief_is_the_chief_task_else_worker_0():
    assert distribute.is_chief_task(_tf_config(2, 0)) and not distribute.is_chief_task(_tf_config(2, 1))
    assert distribute.is_chief_task(_tf_config(2, 0, "chief", chief=True))
    assert not distribute.is_chief_task(_tf_config(2, 0, chief=True))
    assert distribute.is_chief_task({}) and distribute.cluster_size({}) == 1
    assert distribute.cluster_size(_tf_config(2, 0, chief=True)) == 3
    with pytest.raises(distribute.StrategyError, match="TF_CONFIG is not valid JSON"):
        distribute.cluster_size({"TF_CONFIG": "{cluster"})


def test_auto_on_this_machine_is_the_default_strategy(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name in distribute._TPU_ENV:
        monkeypatch.delenv(name, raising=False)
    assert distribute.resolve("auto") == "default"


@requires_cifar10
def test_tpu_without_a_tpu_is_a_one_line_usage_error(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    err = _one_line_error(capsys, ["train", "resnet20", "--strategy", "tpu", "--data-dir", real_data_dir(),
                                   "--out", str(tmp_path / "run")])
    assert "no usable TPU here" in err
    assert not (tmp_path / "run").exists()


def test_multi_worker_without_tf_keras_says_how_to_install_it(capsys, monkeypatch):
    monkeypatch.setattr(distribute, "legacy_keras_available", lambda: False)
    err = _one_line_error(capsys, ["train", "resnet20", "--strategy", "multi-worker"])
    assert 'pip install -e ".[multiworker]"' in err


def test_multi_worker_in_process_on_keras_3_says_what_to_set(capsys):
    from keras_convnets.models.backend import KERAS_3

    if not KERAS_3:
        pytest.skip("this process already runs tf-keras")
    err = _one_line_error(capsys, ["train", "resnet20", "--strategy", "multi-worker"])
    assert "TF_USE_LEGACY_KERAS=1" in err


def test_per_replica_batch_and_linear_lr_scaling(tmp_path):
    if real_data_dir() is None:
        pytest.skip("the real CIFAR-10 subset is absent")
    from keras_convnets.training.loop import plan

    run_plan = plan("densenet40", epochs=1, batch_size=32, scale_lr=True, out=str(tmp_path / "r"),
                    data_dir=real_data_dir())
    assert run_plan.global_batch_size(4) == 128
    assert run_plan.scaled_recipe(4).lr == pytest.approx(0.1 * 128 / 64)  # DenseNet's paper batch is 64
    assert run_plan.arguments["scale_lr"] is True
    unscaled = plan("resnet20", epochs=1, out=str(tmp_path / "u"), data_dir=real_data_dir())
    assert unscaled.scaled_recipe(8).lr == 0.1 and "scale_lr" not in unscaled.arguments


#: Same function, different order of sums: in float64 each rounding is at most 2^-53 (1.1e-16) relative. The float32
#: runs of this comparison (ResNet-20) bound how much three SGD steps amplify a rounding difference: 8e-3 (Intel AMX)
#: and 3e-2 (AMD AVX-512) from 2^-24 (6e-8), a factor under 5e5, so float64 differs by at most ~5e-11 on any CPU (the
#: ResNet-8 compared now has fewer layers to amplify it). 1e-9 leaves 20x that margin.
SAME_FUNCTION_BOUND = 1e-9


@pytest.fixture(scope="module", params=[False, True], ids=["keras3", "tf_keras"])
def mirrored_parity(request):
    """The report of tests/_mirrored_parity.py (one device vs two mirrored replicas, with and without sync_bn) run
    on Keras 3 or tf-keras in a fresh process."""
    legacy = request.param
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_USE_LEGACY_KERAS", None)
    if legacy:
        if not distribute.legacy_keras_available():
            pytest.skip("tf-keras is not installed")
        env["TF_USE_LEGACY_KERAS"] = "1"
    result = subprocess.run([sys.executable, os.path.join(HERE, "_mirrored_parity.py")], capture_output=True,
                            text=True, env=env, timeout=TIMEOUT, cwd=os.path.dirname(HERE))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["keras_3"] is not legacy and report["dtype"] == "float64"
    return report


def test_mirrored_sync_bn_matches_one_device(mirrored_parity):
    report = mirrored_parity
    assert report["moved"] > 1e-2, "the three steps changed the weights"
    synced = report["sync_bn"]
    assert synced["replicas"] == 2
    assert synced["max_diff"] <= SAME_FUNCTION_BOUND, report
    assert synced["moving_variance_rel_diff"] <= SAME_FUNCTION_BOUND, report


def test_mirrored_without_sync_bn_is_told_apart(mirrored_parity):
    """The parity check can fail: per-replica batch statistics move the weights away from one device's by orders
    of magnitude more than the bound (3e-2 measured on Keras 3, a difference of statistics, not of rounding)."""
    unsynced = mirrored_parity["no_sync_bn"]
    assert unsynced["replicas"] == 2
    assert unsynced["max_diff"] > 1e4 * SAME_FUNCTION_BOUND, mirrored_parity


def test_the_weights_average_under_mirrored_matches_one_device(mirrored_parity):
    """The EMA's shadow variables under a mirrored strategy (tf-keras' mirrored optimizer step counter once broke
    the callback there): after the same three steps both models hold the same average, which is not the raw
    weights (the same-function bound: the average is linear in the weights, it amplifies no rounding)."""
    average = mirrored_parity["ema"]
    assert average["replicas"] == 2 and average["steps"] == [3, 3]
    assert average["max_diff"] <= SAME_FUNCTION_BOUND, mirrored_parity
    assert average["moving_variance_rel_diff"] <= SAME_FUNCTION_BOUND, mirrored_parity
    assert average["from_raw"] > 1e-3, "the average is not the last weights"


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    if real_data_dir() is None:
        pytest.skip("the real CIFAR-10 subset is absent")
    if not distribute.legacy_keras_available():
        pytest.skip("tf-keras is not installed")
    cluster = Cluster(tmp_path_factory.mktemp("multiworker"), ["resnet20", "--epochs", "1", "--steps-per-epoch",
                                                               "3", "--batch-size", "16"], real_data_dir())
    for index in range(2):
        cluster.start(index)
    return cluster, cluster.wait(TIMEOUT)


def test_two_workers_exit_0_with_identical_weights(two_workers):
    cluster, statuses = two_workers
    assert statuses == [0, 0], cluster.logs()
    log = open(cluster.log(0)).read()
    assert "MultiWorkerMirroredStrategy (multi-worker), 2 replica(s), global batch 32 = 16 per replica x 2" in log
    chief, other = (np.load(os.path.join(cluster.root, "weights", f"worker-{i}.npz")) for i in range(2))
    assert len(chief.files) == len(other.files) > 0
    for key in chief.files:
        np.testing.assert_array_equal(chief[key], other[key])


def test_only_the_chief_writes_and_its_saved_model_predicts(two_workers):
    import tensorflow as tf

    from keras_convnets.serving import saved_model as savedmodel

    cluster, statuses = two_workers
    assert statuses == [0, 0], cluster.logs()
    assert sorted(os.listdir(cluster.out)) == ["curves.png", "history.csv", "history.json", "logs", "run.json",
                                               "saved_model"]
    assert [row["epoch"] for row in cluster.history()] == [1]
    record = json.load(open(os.path.join(cluster.out, "run.json")))
    assert record["status"] == "complete" and record["replicas"] == 2 and record["global_batch_size"] == 32
    saved_model = tf.saved_model.load(os.path.join(cluster.out, "saved_model"))
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    probabilities = savedmodel.predict(saved_model, images)
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-4)


@pytest.mark.slow
@requires_cifar10
def test_worker_killed_mid_run_and_restarted_resumes(tmp_path):
    """Worker 1 is SIGKILLed during epoch 2 of 3; the chief then fails on its next collective (tf.distribute has no
    elastic training: the cluster restarts), and both restarted with the same commands resume at epoch 2."""
    cluster = Cluster(tmp_path, ["resnet20", "--epochs", "3", "--steps-per-epoch", "4", "--batch-size", "16"],
                      real_data_dir())
    try:
        for index in range(2):
            cluster.start(index)
        deadline = time.time() + TIMEOUT
        while len(cluster.history()) < 1 and time.time() < deadline and cluster.processes[1].poll() is None:
            time.sleep(0.2)
        first_epoch = cluster.history()
        assert [row["epoch"] for row in first_epoch] == [1], cluster.logs()
        cluster.processes[1].send_signal(signal.SIGKILL)
        cluster.processes[1].wait()
        chief_status = cluster.processes[0].wait(timeout=300)
        for index in range(2):
            cluster.start(index)
        statuses = cluster.wait(TIMEOUT)
    finally:
        cluster.kill_all()
    assert chief_status != 0, "the chief cannot finish alone"
    assert statuses == [0, 0], cluster.logs()
    history = cluster.history()
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[0] == first_epoch[0], "the epoch before the kill is kept as it was"
    for index in range(2):
        assert "Resuming at epoch 2" in open(cluster.log(index)).read(), cluster.logs()
    chief, other = (np.load(os.path.join(cluster.root, "weights", f"worker-{i}.npz")) for i in range(2))
    for key in chief.files:
        np.testing.assert_array_equal(chief[key], other[key])
    assert not os.path.exists(os.path.join(cluster.out, "backup"))
