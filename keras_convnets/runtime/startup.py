"""How TensorFlow starts in this process: which CPU kernels it runs (oneDNN), how much of its start-up log a user
sees, and its thread pools.

Call order: :func:`prefer_onednn` must run before TensorFlow is imported and :func:`configure_threads` before it
executes its first op (TF reads both once); the command line calls them first thing. This module imports TensorFlow
only inside functions so that it can.
"""

import json
import os
import re
import sys
import tempfile

#: Environment variables that override the measured defaults (for experiments and unusual machines).
INTRA_ENV, INTER_ENV = "KERAS_CONVNETS_INTRA_OP_THREADS", "KERAS_CONVNETS_INTER_OP_THREADS"
#: TensorFlow's switch for its oneDNN CPU kernels, read once when TensorFlow is imported.
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"


def configured_keras_backend() -> str:
    """The backend Keras 3 will start on, read as Keras reads it without importing Keras (keras/src/backend/
    config.py): ``KERAS_BACKEND``, else ``keras.json``'s ``backend`` in ``KERAS_HOME`` or ``~/.keras`` (``/tmp/.keras``
    when the home is not writable), else ``tensorflow``. tf-keras is not asked about (it is always TensorFlow)."""
    if "KERAS_BACKEND" in os.environ:
        return os.environ["KERAS_BACKEND"]
    home = os.path.expanduser("~")
    directory = os.environ.get("KERAS_HOME") or os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(os.path.expanduser(directory), "keras.json")) as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def load_keras_first() -> None:
    """Imports Keras before TensorFlow when Keras is configured for PyTorch: PyTorch (its triton import) crashes the
    process with a segmentation fault when it loads after TensorFlow (torch 2.x with TensorFlow 2.21, measured: every
    command of ``KERAS_BACKEND=torch keras-convnets`` died so), and loads fine before it."""
    if configured_keras_backend() == "torch" and "tensorflow" not in sys.modules:
        import keras  # noqa: F401  # pylint: disable=import-outside-toplevel


def prefer_onednn() -> bool:
    """Turns on TensorFlow's oneDNN CPU kernels for this process unless ``TF_ENABLE_ONEDNN_OPTS`` is already set;
    returns whether they will be (or are) on.

    TensorFlow enables them by default only on CPUs with AVX512-VNNI/BF16/AMX (its 2.9 release notes); on an AVX2-only
    CPU they are off, and turning them on trains every measured model faster (Eigen's conv backprop-input is
    pathological at 1x1 spatial size) with the same maths up to float rounding order (the figures:
    benchmarks/RESULTS.md, its first table). Effective only before TensorFlow is imported;
    afterwards it changes nothing and reports the state TensorFlow started with. ``TF_ENABLE_ONEDNN_OPTS=0`` keeps
    them off.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault(ONEDNN_ENV, "1")
        return os.environ[ONEDNN_ENV].strip().lower() in ("1", "true")
    return onednn_enabled()


#: TensorFlow's C++ log threshold: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR. The command's default is 2: INFO
#: and WARNING at start-up are notices (CPU features, oneDNN, no CUDA driver), while an ERROR during a run (a lost
#: peer of a multi-worker cluster, a failed kernel, an unreadable file) often explains a failure the Python exception
#: only summarizes, so 3 would hide what matters.
LOG_LEVEL_ENV, COMMAND_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL", "2"
_LOG_RECORD = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\S+\s+\d+ \S+:\d+\] ")   # absl's "I0000 00:00:... port.cc:153] "
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_PYTHON_WARNING = re.compile(r"^\S+:\d+: \w+: ")
_NO_CUDA_DRIVER, _CUINIT_FAILED = "Could not find cuda drivers on your machine", "failed call to cuInit"


def quiet_tensorflow_logs() -> bool:
    """Sets ``TF_CPP_MIN_LOG_LEVEL`` to :data:`COMMAND_LOG_LEVEL` unless it is set (the user's value is kept) or
    TensorFlow is imported already; returns whether it set it. A re-executed command (multi-worker) inherits it."""
    if "tensorflow" in sys.modules or LOG_LEVEL_ENV in os.environ:
        return False
    os.environ[LOG_LEVEL_ENV] = COMMAND_LOG_LEVEL
    return True


def _log_level() -> int:
    try:
        return int(os.environ.get(LOG_LEVEL_ENV, "0"))
    except ValueError:
        return 0


def start_up_lines_kept(text: str, level: int) -> str:
    """What of TensorFlow's start-up output ``text`` the log ``level`` admits. TensorFlow 2.21 logs its first lines
    from its libraries' initializers, before it reads ``TF_CPP_MIN_LOG_LEVEL`` (oneDNN and no-CUDA-driver notices,
    absl's preamble): they are dropped as the level would have dropped them, with their continuation lines. At level
    1 and above, so is the cuInit ERROR of a machine without a CUDA driver (TensorFlow said so in an INFO line: no
    GPU to use, nothing failed). Every other line is kept."""
    severities = "IWEF"
    no_driver = _NO_CUDA_DRIVER in text
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        record = _LOG_RECORD.match(line)
        if record:
            dropping = severities.index(record.group(1)) < level or (
                level >= 1 and no_driver and _CUINIT_FAILED in line)
        elif line.startswith(_ABSL_PREAMBLE):
            dropping = level >= 1
        elif dropping and _PYTHON_WARNING.match(line):
            dropping = False   # a Python warning, not the record's continuation
        if not dropping:
            kept.append(line)
    return "".join(kept)


def start_tensorflow() -> None:
    """Imports TensorFlow and lists its devices (where it logs its start-up lines) with stderr captured, then writes
    back what :func:`start_up_lines_kept` keeps at the current ``TF_CPP_MIN_LOG_LEVEL``. Does nothing if TensorFlow is
    imported already or the level is 0 (all lines wanted). Threads can still be configured afterwards."""
    level = _log_level()
    if "tensorflow" in sys.modules or level <= 0:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        completed = False
        try:
            import tensorflow as tf  # pylint: disable=import-outside-toplevel
            tf.config.list_physical_devices()
            completed = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            sys.stderr.write(start_up_lines_kept(text, level) if completed else text)  # a failure shows it all
            sys.stderr.flush()


def onednn_enabled() -> bool:
    """Whether this process' TensorFlow runs its oneDNN kernels (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=import-outside-toplevel
    return bool(_pywrap_util_port.IsMklEnabled())


def kernels_note() -> str:
    """One line for a training log: which CPU kernels TensorFlow runs, and how to get oneDNN's when it does not."""
    if onednn_enabled():
        return "CPU kernels: oneDNN"
    return (f"CPU kernels: Eigen (oneDNN off): set {ONEDNN_ENV}=1 before importing TensorFlow to train 1.3-5.8x "
            "faster on CPUs without AVX512-VNNI (the keras-convnets command does)")


def _env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def configure_threads(intra_op=None, inter_op=None) -> bool:
    """Sizes TensorFlow's compute thread pools; returns False if TF had already started (then nothing changes).

    ``None`` keeps TensorFlow's own choice (all cores) unless the environment variables above say otherwise.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    intra_op = _env_int(INTRA_ENV, intra_op)
    inter_op = _env_int(INTER_ENV, inter_op)
    try:
        if intra_op is not None:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:  # "... cannot be modified after initialization"
        return False
    return True
