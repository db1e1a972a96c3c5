"""Runtime settings decided in one place, per machine: which kernels TensorFlow uses, the threads of the process,
the tf.data options of the input pipelines, the compile options and the precision of training
(:func:`choose_settings`: measured choices on small CPUs, see benchmarks/RESULTS.md; tf.data's autotuner on
many-core and accelerator hosts; :func:`choose_precision`: bf16 only where the CPU computes it natively). The data
and training modules only call these.

Call order: :func:`prefer_onednn` must run before TensorFlow is imported and :func:`configure_threads` before it
executes its first op (TF reads both once); the CLI calls them first thing. This module imports TensorFlow only
inside functions so that it can. :func:`dataset_options` and :func:`compile_options` can be called any time.
Settings are values, passed explicitly: a training run chooses its :class:`RuntimeSettings` once (with its strategy
and flags) and hands them to its pipelines and ``compile``; a caller that passes none gets :func:`default_settings`.
"""

import contextlib
import dataclasses
import functools
import os
import re
import sys
import tempfile
from typing import Optional, Tuple

from keras_convnets import checks

#: Environment variables that override the measured defaults (for experiments and unusual machines).
INTRA_ENV, INTER_ENV = "KERAS_CONVNETS_INTRA_OP_THREADS", "KERAS_CONVNETS_INTER_OP_THREADS"
#: TensorFlow's switch for its oneDNN CPU kernels, read once when TensorFlow is imported.
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn() -> bool:
    """Turns on TensorFlow's oneDNN CPU kernels for this process unless ``TF_ENABLE_ONEDNN_OPTS`` is already set;
    returns whether they will be (or are) on.

    TensorFlow enables them by default only on CPUs with AVX512-VNNI/BF16/AMX (its 2.9 release notes); on an AVX2-only
    CPU they are off, and turning them on trained ResNet-20 2.3x, DenseNet-BC-100 1.6x, WRN-16-4 1.3x and
    ResNet-50 at 32x32 5.8x faster (Eigen's conv backprop-input is pathological at 1x1 spatial size) with the same
    maths up to float rounding order (benchmarks/RESULTS.md). Effective only before TensorFlow is imported;
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


#: A CPU with at most this many cores gets the settings measured on our 2-core machines; a bigger one, tf.data's
#: autotuner (which the measurement does not cover).
SMALL_CPU_CORES = 4
#: Steps per ``tf.function`` call on a CPU. Measured 1 vs 8 on a 2-core CPU at load ~3 (ResNet-20, batch 64): 8 was
#: 4.6% slower in 4 of 4 rounds (Keras 3's while_loop over optional inputs costs more than the per-step Python round
#: trip it saves), so 1 (benchmarks/RESULTS.md, "steps_per_execution").
CPU_STEPS_PER_EXECUTION = 1
#: On a TPU every call of the train function is a host round trip; Keras' and Cloud TPU's guidance is tens of steps
#: per call. Not measured here (no TPU).
TPU_STEPS_PER_EXECUTION = 32


#: CPU flags (Linux ``/proc/cpuinfo``) of native bf16 arithmetic: Intel AMX tiles (Xeon 4th gen, Sapphire Rapids,
#: and newer), AVX512-BF16 (those, Cooper Lake, AMD Zen 4 and newer) and Arm's BF16 extension (Neoverse V1/N2,
#: Graviton 3 and newer). Without one of them oneDNN emulates bf16 and is slower than float32
#: (tensorflow/tensorflow#42422).
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
CPUINFO = "/proc/cpuinfo"


def cpu_bf16_flags(cpuinfo: Optional[str] = None) -> Tuple[str, ...]:
    """The :data:`BF16_FLAGS` the CPU has, from the text of ``/proc/cpuinfo`` (read when ``cpuinfo`` is None; no such
    file, e.g. macOS: none). Only the first processor's ``flags`` (x86) or ``Features`` (Arm) line is read."""
    if cpuinfo is None:
        try:
            with open(CPUINFO) as f:
                cpuinfo = f.read()
        except OSError:
            return ()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            present = set(value.split())
            return tuple(flag for flag in BF16_FLAGS if flag in present)
    return ()


@dataclasses.dataclass(frozen=True)
class Machine:
    """What the settings depend on: CPU cores, accelerators, whether TensorFlow runs oneDNN kernels, and the CPU's
    native bf16 instructions (:func:`cpu_bf16_flags`)."""

    cpu_cores: int
    gpus: int = 0
    tpu_cores: int = 0
    onednn: bool = False
    bf16_flags: Tuple[str, ...] = ()

    @property
    def accelerators(self) -> int:
        return self.gpus + self.tpu_cores

    @property
    def native_bf16(self) -> bool:
        return bool(self.bf16_flags)

    def describe(self) -> str:
        kernels = "oneDNN" if self.onednn else "Eigen"
        bf16 = f", native bf16 ({', '.join(self.bf16_flags)})" if self.bf16_flags else ""
        devices = (f", {self.gpus} GPU(s)" if self.gpus else "") + (f", {self.tpu_cores} TPU core(s)"
                                                                     if self.tpu_cores else "")
        return f"{self.cpu_cores}-core CPU ({kernels} kernels){bf16}{devices}"


def detect_machine(strategy=None) -> Machine:
    """This process' :class:`Machine` (imports TensorFlow). TPU cores are counted from a ``TPUStrategy``."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tpu_cores = 0
    if strategy is not None and "TPU" in type(strategy).__name__:
        tpu_cores = strategy.num_replicas_in_sync
    return Machine(cpu_cores=os.cpu_count() or 1, gpus=len(tf.config.list_physical_devices("GPU")),
                   tpu_cores=tpu_cores, onednn=onednn_enabled(), bf16_flags=cpu_bf16_flags())


#: ``precision`` values of a run. ``bf16``: bfloat16 compute with float32 variables; ``auto``: ``bf16`` where the CPU
#: computes bf16 natively and there is no accelerator, else float32; the Keras policies as Keras defines them.
PRECISIONS = ("float32", "bf16", "auto", "mixed_float16", "mixed_bfloat16")
#: TensorFlow's grappler option that rewrites a graph's oneDNN ops to bfloat16 (process-wide, read per function call).
ONEDNN_BF16_OPTION = "auto_mixed_precision_onednn_bfloat16"
#: Measured on a 2-core Sapphire Rapids Xeon (AMX), median train-step images/s ratios bf16 / float32 of ResNet-20,
#: WRN-16-4, ResNet-50 and DenseNet-121 (benchmarks/RESULTS.md, "bf16"): the hint a float32 run prints on a CPU with
#: native bf16.
BF16_MEASURED = "1.3-2.8x train-step images/s on an AMX Xeon"


class PrecisionError(ValueError):
    """A precision this machine cannot run usefully (bf16 on a CPU without native bf16)."""


@dataclasses.dataclass(frozen=True)
class Precision:
    """How a run computes: ``policy`` is the Keras dtype policy of the model's layers; ``onednn_bf16`` turns on
    TensorFlow's oneDNN bf16 graph rewrite for the training graphs (:func:`onednn_bf16`)."""

    requested: str
    policy: str
    onednn_bf16: bool
    reason: str

    @property
    def label(self) -> str:
        return "bf16 (oneDNN graph rewrite)" if self.onednn_bf16 else self.policy

    def describe(self) -> str:
        return f"precision {self.label} ({self.reason})"


def choose_precision(machine: Machine, requested: str = "float32") -> Precision:
    """The :class:`Precision` of ``requested`` (one of :data:`PRECISIONS`) on ``machine``.

    * ``bf16`` on a CPU-only host with native bf16 (and oneDNN kernels): TensorFlow's oneDNN auto-mixed-precision
      rewrite of the training graphs: convolutions, matmuls, our fused batch norm's ``FusedBatchNormV3`` and the
      elementwise ops between them compute in bfloat16; variables, the optimizer, BN's scale, offset and statistics
      and the loss (softmax cross-entropy, on TensorFlow's deny list) stay float32. Measured on a 2-core Sapphire Rapids
      Xeon: 1.3-2.8x train-step images/s, 1.6x per ResNet-20 epoch; Keras' ``mixed_bfloat16`` policy was 0.91-0.98x
      there (issue 20). AVX512-BF16 without AMX (AMD Zen 4) and Arm BF16: unmeasured.
    * ``bf16`` on a GPU or TPU host: Keras' ``mixed_bfloat16`` policy (bf16 units of TPUs and Ampere+ GPUs);
      unmeasured here.
    * ``bf16`` on a CPU without native bf16 or without oneDNN kernels: a :class:`PrecisionError`: it would be
      emulated and slower than float32 (tensorflow/tensorflow#42422), never chosen silently.
    * ``auto``: ``bf16`` where it is the CPU case above, else float32 (also on GPU/TPU hosts: pass ``bf16`` there).
    * ``mixed_float16`` on a CPU-only host, ``mixed_bfloat16`` on one without native bf16: a :class:`PrecisionError`,
      as for ``bf16``: CPUs have no float16 training kernels, and bfloat16 without native support is emulated; both
      train slower than float32.
    * ``float32``, and ``mixed_float16`` / ``mixed_bfloat16`` elsewhere: that Keras policy, as asked.
    """
    checks.one_of("precision", requested, PRECISIONS)
    cpu_bf16 = machine.native_bf16 and machine.onednn and not machine.accelerators
    if requested in ("bf16", "auto") and cpu_bf16:
        return Precision(requested, "float32", True, f"{requested}: native bf16 CPU; variables, BN statistics and the "
                                                     "loss stay float32")
    if requested == "bf16" and machine.accelerators:
        return Precision(requested, "mixed_bfloat16", False, "bf16 on a GPU/TPU host: Keras' mixed_bfloat16 "
                                                             "policy; unmeasured here")
    if requested == "bf16":
        why = ("without oneDNN kernels (TF_ENABLE_ONEDNN_OPTS=0)" if machine.native_bf16 else
               "on a CPU without native bf16 (no amx_bf16, avx512_bf16 or Arm bf16), where it is emulated and slower "
               "than float32 (tensorflow/tensorflow#42422)")
        raise PrecisionError(f"precision bf16 cannot run {why}; use --precision float32 or auto")
    _check_keras_policy(machine, requested)
    if requested == "auto":
        why = "GPU/TPU host: pass bf16 for mixed_bfloat16" if machine.accelerators else (
            "oneDNN kernels are off" if machine.native_bf16 else "no native bf16 on this CPU")
        return Precision(requested, "float32", False, f"auto: {why}")
    hint = f"; --precision bf16 measured {BF16_MEASURED}" if cpu_bf16 and requested == "float32" else ""
    return Precision(requested, requested, False, f"as asked{hint}")


def _check_keras_policy(machine: Machine, requested: str) -> None:
    """A :class:`PrecisionError` for a Keras mixed policy that would train slower than float32 on this CPU-only
    host: ``mixed_float16`` anywhere, ``mixed_bfloat16`` without native bf16."""
    if machine.accelerators or requested not in ("mixed_float16", "mixed_bfloat16"):
        return
    if requested == "mixed_float16":
        raise PrecisionError("precision mixed_float16 cannot run usefully on a CPU: CPUs have no float16 training "
                             "kernels, so it trains slower than float32 (it is for GPUs); use --precision float32 or "
                             "auto")
    if not machine.native_bf16:
        raise PrecisionError("precision mixed_bfloat16 cannot run usefully on a CPU without native bf16 (no amx_bf16, "
                             "avx512_bf16 or Arm bf16), where it is emulated and slower than float32; use --precision "
                             "float32 or auto")


@contextlib.contextmanager
def onednn_bf16(enabled: bool = True):
    """TensorFlow's oneDNN bf16 rewrite on (or off) for the functions *called* inside the block, restored after.

    The option is process-wide but part of every function call's configuration: a ``tf.function`` called with it on
    is instantiated (and rewritten) apart from the same function called with it off, so a process can alternate.
    Eager ops are never rewritten. Where TensorFlow's oneDNN build cannot rewrite (no oneDNN, no AVX-512) it does
    nothing: the graphs compute in float32.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    before = bool(tf.config.optimizer.get_experimental_options().get(ONEDNN_BF16_OPTION, False))
    tf.config.optimizer.set_experimental_options({ONEDNN_BF16_OPTION: bool(enabled)})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({ONEDNN_BF16_OPTION: before})


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    """The input-pipeline and compile settings of one run, and why they were chosen.

    ``data_threads``: size of a private tf.data thread pool (None: tf.data shares TensorFlow's inter-op pool).
    ``autotune``: tf.data's autotuner sizes map parallelism and prefetch buffers (``AUTOTUNE`` in the pipelines).
    ``jit_compile``: None leaves it to Keras (its ``"auto"`` turns XLA on for accelerators where the model allows).
    ``precision``: how training computes (:func:`choose_precision`).
    """

    machine: Machine
    data_threads: Optional[int]
    autotune: bool
    steps_per_execution: int
    jit_compile: Optional[bool]
    reason: str
    precision: Precision = Precision("float32", "float32", False, "as asked")

    def describe(self) -> str:
        """The run's first line: what was chosen, on what, and why."""
        data = (f"tf.data on {self.data_threads} private thread(s), autotune {'on' if self.autotune else 'off'}"
                if self.data_threads else f"tf.data autotune {'on' if self.autotune else 'off'} over all cores")
        xla = {None: "XLA as Keras decides", True: "XLA on", False: "XLA off"}[self.jit_compile]
        return (f"Runtime: {self.machine.describe()}: {data}, steps_per_execution {self.steps_per_execution}, "
                f"{xla} ({self.reason}); {self.precision.describe()}")


def choose_settings(machine: Machine, *, steps_per_execution: Optional[int] = None,
                    jit_compile: Optional[bool] = None, precision: str = "float32") -> RuntimeSettings:
    """The settings for ``machine``; ``steps_per_execution`` / ``jit_compile`` override the choice (flags);
    ``precision`` is resolved by :func:`choose_precision` (a :class:`PrecisionError` for bf16 where it cannot run).

    * accelerator host (GPUs or TPU): the input pipeline must keep devices fed (ResNet-50 at 224x224 takes thousands
      of decoded, augmented images per second on one current GPU), so tf.data's autotuner parallelizes decoding and
      augmentation over every core; ``tf.distribute`` prefetches batches onto the devices; XLA is Keras' call. Not
      measured here: our machines have no accelerator.
    * small CPU (<= SMALL_CPU_CORES cores): what was measured on 2 cores: the input work of a CIFAR pipeline is a
      few percent of one core, so one private tf.data thread without the autotuner, which otherwise adds runnable
      threads that preempt the training step's kernels; XLA off (slower for these convnets on CPU).
    * bigger CPU: tf.data's autotuner over the shared pool (the 1-thread setting was measured on 2 cores only), XLA
      off.
    """
    if steps_per_execution is not None:
        checks.positive_int("steps_per_execution", steps_per_execution)
    checks.one_of("jit_compile (None: Keras decides)", jit_compile, (None, True, False))
    chosen_precision = choose_precision(machine, precision)
    if machine.accelerators:
        kind = "TPU" if machine.tpu_cores else "GPU"
        default_steps = TPU_STEPS_PER_EXECUTION if machine.tpu_cores else 1
        chosen = RuntimeSettings(machine, None, True, default_steps, None,
                                 f"{kind} host: input parallel over all cores to keep {machine.accelerators} "
                                 f"device(s) fed; unmeasured here")
    elif machine.cpu_cores <= SMALL_CPU_CORES:
        chosen = RuntimeSettings(machine, 1, False, CPU_STEPS_PER_EXECUTION, False,
                                 f"CPU with <= {SMALL_CPU_CORES} cores: the settings measured on 2 cores")
    else:
        chosen = RuntimeSettings(machine, None, True, CPU_STEPS_PER_EXECUTION, False,
                                 f"CPU with {machine.cpu_cores} cores: tf.data's autotuner; 1 thread was measured "
                                 "on 2 cores only")
    return dataclasses.replace(
        chosen, steps_per_execution=chosen.steps_per_execution if steps_per_execution is None else steps_per_execution,
        jit_compile=chosen.jit_compile if jit_compile is None else jit_compile, precision=chosen_precision)


@functools.lru_cache(maxsize=None)
def default_settings() -> RuntimeSettings:
    """The settings :func:`choose_settings` picks for this process' machine with no flags: what a pipeline or
    ``compile`` gets when no settings are passed (a run passes its own, chosen with its strategy and flags).
    Computed once: the machine does not change under a running process."""
    return choose_settings(detect_machine())


def input_threads(decodes_images: bool, settings: Optional[RuntimeSettings] = None) -> int:
    """Threads for an input pipeline's maps. A small CPU keeps its measured single thread for pipelines of decoded
    32x32 arrays (a few percent of a core); pipelines that decode, crop and resize photos get every core (decoding is
    most of their work: issue 13's benchmarks/pipeline_imagenet.py), as every pipeline does on bigger machines."""
    settings = settings or default_settings()
    if settings.data_threads and not decodes_images:
        return settings.data_threads
    return settings.machine.cpu_cores


def dataset_options(settings: Optional[RuntimeSettings] = None, threads: Optional[int] = None):
    """The ``tf.data.Options`` applied to every input pipeline we build, from ``settings`` (default:
    :func:`default_settings`).

    On a small CPU (the measured case): ``private_threadpool_size=1`` (without it tf.data runs its functions on
    TensorFlow's inter-op pool, the same 2 threads that run the training step's ops, so input work queues behind
    and preempts the step's kernels), ``autotune.enabled=False`` (``num_parallel_calls=AUTOTUNE`` then means the
    private pool's size, and ``prefetch(AUTOTUNE)`` keeps its own simple buffer tuning) and
    ``max_intra_op_parallelism=1`` (an input op never fans out over the compute pool). This held fit at its full
    rate every epoch (benchmarks/RESULTS.md). Elsewhere tf.data's defaults with the autotuner. ``threads`` (from
    :func:`input_threads`) sizes the private pool of a pipeline that needs more than the settings' one thread.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    settings = settings or default_settings()
    options = tf.data.Options()
    options.autotune.enabled = settings.autotune
    if settings.data_threads:
        options.threading.private_threadpool_size = threads or settings.data_threads
        options.threading.max_intra_op_parallelism = 1
    return options


def compile_options(info=None, steps_per_epoch=None, settings: Optional[RuntimeSettings] = None) -> dict:
    """Extra ``model.compile`` keyword arguments for training the registered model ``info``, from ``settings``.

    ``steps_per_execution``: N steps per call of the compiled train function (a ``tf.while_loop`` inside it), the
    same maths step for step (the optimizer, learning-rate schedule and BN updates run every step); only the
    per-step Python overhead and callback calls go. Keras calls batch-level callbacks every N steps. On a finite
    dataset every epoch is exact (checked: 11 batches, N=8 -> 11 optimizer steps). Keras 3 runs whole executions
    when ``fit`` gets ``steps_per_epoch`` on a repeated dataset, so pass that ``steps_per_epoch`` here and N becomes
    its largest divisor <= the chosen N (the epoch stays exact). ``jit_compile`` is passed only when the settings
    decide it (False on CPUs, where XLA was slower for these convnets). ``info`` is accepted for per-model choices;
    none of the measured models needed one.
    """
    settings = settings or default_settings()
    steps = settings.steps_per_execution
    if steps_per_epoch:
        steps = max(n for n in range(1, steps + 1) if int(steps_per_epoch) % n == 0)
    options = {"steps_per_execution": steps}
    if settings.jit_compile is not None:
        options["jit_compile"] = settings.jit_compile
    return options

