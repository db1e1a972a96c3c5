"""Every family on every Keras 3 backend: weights saved on TensorFlow give JAX's and PyTorch's models the same function.

One table (tests/_backend_table.py: each family's shallowest form, the memory-efficient DenseNet, a torchvision-format
checkpoint) is answered by TensorFlow in this process and by each other backend in one subprocess of its own, in which
importing ``tensorflow`` fails: the model side needs no TensorFlow. Per row and backend: the float32 inference logits,
and one SGD step from the same weights on the same batch (its loss, every weight after it, BN moving statistics
included), compared with TensorFlow's within bounds derived below. The subprocesses also train with stochastic depth
and dropout, build a backbone through ``get_backbone``, and say why ``sync_bn`` is refused.

JAX's subprocess needs ``pip install -e ".[jax]"``: without jax its tests skip, unless KERAS_CONVNETS_REQUIRE_JAX=1
(.ci/run sets it) makes them fail; PyTorch's likewise with KERAS_CONVNETS_REQUIRE_TORCH=1.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tests import _backend_table as table
from tests._extras import missing_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = {"jax": "KERAS_CONVNETS_REQUIRE_JAX", "torch": "KERAS_CONVNETS_REQUIRE_TORCH"}

#: Unit roundoff of float32.
U = 2.0 ** -24
#: The sizes the bounds below assume; each row's model is checked against them (test_bounds_cover_the_rows).
MAX_FAN_IN, MAX_DEPTH = 2304, 40
#: max |logits(backend) - logits(TensorFlow)| / max |logits(TensorFlow)|, in inference. Both compute the same float32
#: function with other kernels (summation orders, convolution algorithms, XLA's fusions): rounding errors of relative
#: size U accumulating like a random walk over the K <= 2,304 products of a dot product and the D <= 40 layers of a
#: path move each backend's logits by about U * sqrt(K * D) = 1.8e-5 of their scale (inference BN is a fixed affine
#: map, ReLU 1-Lipschitz: neither amplifies a relative error), so two backends differ by at most 3.6e-5. 1e-4 holds with
#: room on any CPU; a wrong layer (padding side, BN constant, shortcut channel order) moves logits by 1e-2 or more.
LOGITS_RTOL = 1e-4
#: |loss(backend) - loss(TensorFlow)| / max |training-mode logits|: the loss, mean(logsumexp(z) - z_label), changes by
#: at most 2 max |dz| (its gradient in z has l1 norm <= 2 per example), and the training-mode logits obey LOGITS_RTOL's
#: argument (batch statistics are sums like the others).
LOSS_RTOL = 2 * LOGITS_RTOL
#: max |weight after the step (backend) - (TensorFlow)| / the step's largest change of any weight. The changes are
#: lr * gradients and (1 - momentum) * (batch statistic - moving statistic): the backward pass is D more layers of the
#: same sums, U * sqrt(K * 2D) = 2.6e-5 of the scale of their terms per backend, 5.2e-5 between two. A parameter
#: followed by a training-mode BN gets a gradient whose terms largely cancel (BN removes its input's mean and scale),
#: so its own size says little about its rounding: measured against the step's largest change, terms up to 10x that
#: large leave 5.2e-4; 1e-3 holds. The batch keeps every kink (ReLU input, max-pool gap) farther than rounding reaches
#: (_backend_table.KINK_MARGIN), so the step is a continuous function of the arithmetic. A BN statistic updated twice
#: or not at all, or a wrong gradient, moves the weights by the step's own size.
STEP_RTOL = 1e-3


def _start(backend, directory):
    """The backend's subprocess: Keras on ``backend``, ``import tensorflow`` failing (a package of that name on the
    path that raises), XLA's optimisation passes off (one step per model: compiling dominates JAX's time, and the
    bounds above hold for any fusion), threads as this worker's TensorFlow has them."""
    blocker = os.path.join(directory, "no_tensorflow", "tensorflow")
    os.makedirs(blocker, exist_ok=True)
    with open(os.path.join(blocker, "__init__.py"), "w") as f:
        f.write('raise ModuleNotFoundError("No module named \'tensorflow\' (blocked by tests/test_backends.py)")\n')
    env = dict(os.environ, KERAS_BACKEND=backend,
               PYTHONPATH=os.pathsep.join([os.path.dirname(blocker), ROOT, os.environ.get("PYTHONPATH", "")]),
               XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
    if "TF_NUM_INTRAOP_THREADS" in os.environ:
        env.setdefault("OMP_NUM_THREADS", os.environ["TF_NUM_INTRAOP_THREADS"])
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "_backend_table.py"), directory], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    """``{backend: (table answers, report) or the reason it did not run}``, TensorFlow's included."""
    directory = str(tmp_path_factory.mktemp("backends"))
    table.prepare(directory)
    skipped = {backend: missing_module(backend, BACKENDS[backend]) for backend in BACKENDS}
    running = {backend: _start(backend, directory) for backend, reason in skipped.items() if reason is None}
    results = {"tensorflow": (table.answers(directory, compiled=False), None)}
    for backend, process in running.items():
        stdout, stderr = process.communicate(timeout=1200)
        assert process.returncode == 0, f"{backend}: {stderr[-4000:]}"
        report = json.loads(stdout.split("REPORT", 1)[1])
        results[backend] = (table.load(os.path.join(directory, f"{backend}.npz")), report)
    results.update({backend: reason for backend, reason in skipped.items() if reason is not None})
    return results


def _of(answers, backend):
    if isinstance(answers[backend], str):
        pytest.skip(answers[backend])
    return answers[backend]


ROWS = list(table.rows())
CASES = [(backend, row) for backend in BACKENDS for row in ROWS]


def _relative(a, b, scale):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) / scale


@pytest.mark.parametrize("backend, row", CASES, ids=[f"{b}-{r}" for b, r in CASES])
def test_inference_gives_tensorflows_logits(answers, backend, row):
    expected = answers["tensorflow"][0][row][0]
    got = _of(answers, backend)[0][row][0]
    assert np.max(np.abs(expected)) > 0.5, "logits too small to test anything"
    assert _relative(got, expected, np.max(np.abs(expected))) <= LOGITS_RTOL


@pytest.mark.parametrize("backend, row", CASES, ids=[f"{b}-{r}" for b, r in CASES])
def test_one_training_step_gives_tensorflows_loss_and_weights(answers, backend, row):
    _, loss, weights, step, train_scale = answers["tensorflow"][0][row]
    _, got_loss, got_weights, _, _ = _of(answers, backend)[0][row]
    assert abs(got_loss - loss) <= LOSS_RTOL * train_scale
    assert len(got_weights) == len(weights) and step > 1e-3
    assert max(_relative(a, b, step) for a, b in zip(got_weights, weights)) <= STEP_RTOL


@pytest.mark.parametrize("backend", ["tensorflow", *BACKENDS])
def test_memory_efficient_densenet_is_the_plain_one_on_every_backend(answers, backend):
    """The plain twin's weights file loads through ``weights=``, and one step updates the BN moving statistics once:
    twice would move them by the step's own size."""
    rows = _of(answers, backend)[0]
    plain, efficient = rows["densenet_bc"], rows["densenet_bc_memory_efficient"]
    assert _relative(efficient[0], plain[0], np.max(np.abs(plain[0]))) <= LOGITS_RTOL
    assert abs(efficient[1] - plain[1]) <= LOSS_RTOL * answers["tensorflow"][0]["densenet_bc"][4]
    assert max(_relative(a, b, plain[3]) for a, b in zip(efficient[2], plain[2])) <= STEP_RTOL


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_options_train_and_nothing_imports_tensorflow(answers, backend):
    report = _of(answers, backend)[1]
    assert report["backend"] == backend and report["tensorflow_imported"] is False
    options = report["options"]
    assert all(math.isfinite(loss) for loss in options["fit"]["losses"]) and options["fit"]["changed"]
    drops = options["stochastic_depth"]   # inverted: kept examples scaled by 1 / 0.5, whole examples dropped
    assert drops["values"] == [0.0, 2.0] and drops["whole"] and 0.4 < drops["kept"] < 0.6
    assert options["features"] == {"P0": [4, 8, 8, 16], "P1": [4, 4, 4, 32], "P2": [4, 2, 2, 64]}
    assert options["sync_bn"] == (f"sync_bn=True needs Keras' TensorFlow backend (Keras synchronises batch-norm "
                                  f"statistics across replicas only under a tf.distribute strategy); this process "
                                  f"runs Keras on {backend} (KERAS_BACKEND=tensorflow selects it)")


@pytest.mark.parametrize("row", ROWS)
def test_bounds_cover_the_rows(row):
    """The largest fan-in and the number of weighted layers (a bound on a path's length) the derivations assume."""
    build, size, _ = table.rows()[row]
    model = build(input_shape=(size, size, 3))
    kernels = [w for w in model.weights if getattr(w, "path", w.name).endswith(("kernel", "kernel:0"))]
    assert max(math.prod(w.shape[:-1]) for w in kernels) <= MAX_FAN_IN
    assert len(kernels) <= MAX_DEPTH
