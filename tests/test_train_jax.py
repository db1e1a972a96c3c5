"""Training on Keras' JAX backend (issue 31, item 4), in ``KERAS_BACKEND=jax`` subprocesses (this process is
TensorFlow's): a run over two host devices (``--strategy auto``: DataParallel) killed after epoch 1 resumes at epoch
2 and exports a SavedModel that TensorFlow loads and that classifies raw encoded images of any size;
``keras.distribution.DataParallel`` over two host devices gives one device's weights within the bound below; on
PyTorch ``train`` refuses in one line.

The subprocesses start together (the machine's cores compile their steps side by side) with XLA's optimisation
passes off: compiling dominates these tiny runs, and nothing here depends on fusions. Without jax the JAX tests skip,
unless KERAS_CONVNETS_REQUIRE_JAX=1.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests._data_dir import MISSING, real_data_dir
from tests._extras import missing_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "_jax_train.py")
REQUIRE_JAX = "KERAS_CONVNETS_REQUIRE_JAX"
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"

#: max |weights(2 devices) - weights(1 device)| / the step's largest change of any weight, after one SGD step of
#: resnet20 on the same global batch of 32. The two runs compute the same float32 function: DataParallel lays each
#: batch out over the devices and XLA reduces the loss, the gradients and the batch-norm statistics over the whole
#: global batch; only the order of the additions differs (each device sums its 16 images, then the two partial sums
#: are added). A weight's gradient is a sum over the batch and the positions, K <= 32 * 32 * 32 = 32,768 products;
#: rounding errors of relative size U = 2^-24 accumulating like a random walk over those and the D = 2 * 20 layers of
#: the forward and backward passes move each run by about U * sqrt(K * D) = 6.8e-5 of the scale of the terms, so two
#: runs differ by 1.4e-4 of it. Behind a training-mode batch norm a gradient's terms largely cancel (BN removes its
#: input's mean and scale), so they may be up to 10x the step's largest change: 1.4e-3, and 2e-3 holds (measured:
#: 2.8e-4). Batch-norm statistics per device instead of global, or gradients not summed over the devices, move the
#: weights by a sizeable part of the step itself (>= 1e-2 of it).
DATA_PARALLEL_RTOL = 2e-3


def _start(backend, *args, devices=1):
    """A ``KERAS_BACKEND=backend`` Python process running ``args`` here, with ``devices`` host devices."""
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
               TFDS_DATA_DIR=real_data_dir() or "", TF_CPP_MIN_LOG_LEVEL="2",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} {FAST_COMPILE}")
    env.pop("TF_USE_LEGACY_KERAS", None)
    return subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process, timeout=600):
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The subprocesses' ``(returncode, stdout, stderr)`` by name, started together; the resumed run after the
    killed one. A backend that is missing maps to the reason its tests skip."""
    if real_data_dir() is None:
        pytest.skip(MISSING)
    out = tmp_path_factory.mktemp("jax_train")
    results = {}
    jax_missing = missing_module("jax", REQUIRE_JAX)
    started = {}
    if jax_missing is None:
        started["killed"] = _start("jax", SCRIPT, "train", str(out / "run"), "--kill-after-epoch-1", devices=2)
        started["data-parallel"] = _start("jax", SCRIPT, "data-parallel", str(out / "dp"), devices=2)
        results["killed"] = _finish(started.pop("killed"))
        run = out / "run"
        results["after kill"] = {"checkpoints": sorted(os.listdir(run / "backup")) if (run / "backup").is_dir() else [],
                                 "status": _json(run / "run.json")["status"] if (run / "run.json").is_file() else None}
        started["resumed"] = _start("jax", SCRIPT, "train", str(out / "run"), devices=2)
    for name, process in started.items():
        results[name] = _finish(process)
    for name in ("killed", "data-parallel", "resumed"):
        results.setdefault(name, jax_missing)
    results["out"] = out
    return results


def _of(runs, name):
    if isinstance(runs[name], str):
        pytest.skip(runs[name])
    return runs[name]


def _json(path):
    with open(path) as f:
        return json.load(f)


def test_a_killed_jax_run_resumes_at_epoch_2_and_completes(runs):
    status, _, err = _of(runs, "killed")
    run = runs["out"] / "run"
    assert status == 9, err[-3000:]
    assert runs["after kill"] == {"checkpoints": ["epoch-00001"], "status": "running"}
    status, stdout, err = _of(runs, "resumed")
    assert status == 0, err[-3000:]
    assert "Runtime: Keras on jax" in stdout and "Resuming at epoch 2" in stdout
    assert "Strategy: DataParallel (keras.distribution) (auto), 2 replica(s), global batch 32" in stdout
    assert "Epoch 1/2" not in stdout and "Epoch 2/2" in stdout
    assert [row["epoch"] for row in _json(run / "history.json")] == [1, 2]
    record = _json(run / "run.json")
    assert record["status"] == "complete" and record["replicas"] == 2
    assert not (run / "backup").exists(), "the backup goes once the export has landed"


def test_the_jax_runs_saved_model_classifies_raw_image_bytes_of_any_size_in_tensorflow(runs):
    import tensorflow as tf

    from keras_convnets.serving import saved_model

    status, _, err = _of(runs, "resumed")
    assert status == 0, err[-3000:]
    reloaded = saved_model.load(str(runs["out"] / "run" / "saved_model"))
    assert saved_model.load_class_names(reloaded)[:2] == ["airplane", "automobile"]
    images = np.random.default_rng(0).integers(0, 256, (3, 45, 29, 3), dtype=np.uint8)  # not 32x32
    raw = saved_model.predict(reloaded, images)
    encoded = tf.constant([tf.io.encode_png(image).numpy() for image in images])
    served = reloaded.signatures[saved_model.SERVING_BYTES](
        **{saved_model.BYTES_INPUT: encoded})[saved_model.SIGNATURE_OUTPUT].numpy()
    assert served.shape == (3, 10) and np.allclose(served.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(served, raw, atol=1e-6)  # PNG is lossless: the same pixels


def test_data_parallel_over_two_host_devices_gives_one_devices_weights(runs):
    status, stdout, err = _of(runs, "data-parallel")
    assert status == 0, err[-3000:]
    result = json.loads(stdout.split("RESULT", 1)[1])
    dp = runs["out"] / "dp"
    one, two = _json(dp / "one" / "run.json"), _json(dp / "two" / "run.json")
    assert (one["replicas"], one["global_batch_size"]) == (1, 32)
    assert (two["replicas"], two["global_batch_size"], two["strategy"]) == (2, 32, "DataParallel (keras.distribution)")
    assert result["relative"] <= DATA_PARALLEL_RTOL, result


def test_training_on_pytorch_is_refused_in_one_line_before_anything_starts(tmp_path):
    """The command reads Keras' configuration and refuses before Keras or TensorFlow is imported (torch need not be
    installed); the library refuses in ``plan`` on the backend Keras started on."""
    process = _start("torch", "-m", "keras_convnets.cli", "train", "resnet20", "--out", str(tmp_path / "out"))
    status, _, err = _finish(process, timeout=120)
    refusal = "training runs on the tensorflow and jax backends; this process runs Keras on torch"
    assert status == 2 and len(err.strip().splitlines()) == 1 and refusal in err, err[-3000:]
    assert not (tmp_path / "out").exists()


def test_plan_refuses_a_backend_training_does_not_run_on(tmp_path, monkeypatch):
    from keras_convnets.models import backend
    from keras_convnets.training import plan

    monkeypatch.setattr(backend, "BACKEND", "torch")
    with pytest.raises(ValueError, match=r"^training runs on the tensorflow and jax backends; this process runs Keras "
                                         r"on torch \(KERAS_BACKEND=jax or tensorflow selects one\)"):
        plan.plan("resnet20", out=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_padded_evaluation_batches_count_only_the_real_rows():
    """JAX's evaluation batches are padded with weight-0 rows (copies of the batch's first); accuracy, compiled as a
    weighted metric, counts the real rows only (a plain metric would count the copies: 3/6 here, not 3/5)."""
    import tensorflow as tf

    from keras_convnets.data import pipelines
    from keras_convnets.models.backend import keras

    labels = np.array([1, 0, 0, 0, 1])  # a model answering 0 is right on 3 of the 5
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((5, 2), np.float32), labels)).batch(4)
    padded = list(pipelines.padded_batches(dataset, 2).as_numpy_iterator())
    assert [list(weights) for _, _, weights in padded] == [[1, 1, 1, 1], [1, 0]]
    whole = pipelines.padded_batches(dataset, 4, whole=True)
    assert [spec.shape[0] for spec in whole.element_spec] == [4, 4, 4]
    answer_0 = keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant([1, 0]))
    model = keras.Sequential([keras.Input((2,)), answer_0])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=["accuracy"])
    assert model.evaluate(pipelines.padded_batches(dataset, 2), verbose=0, return_dict=True)["accuracy"] == \
        pytest.approx(0.6)
