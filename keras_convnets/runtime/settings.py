"""Runtime settings decided in one place, per machine: the threads and options of the input pipelines, the compile
options and the precision of training (:func:`choose_settings`: measured choices on small CPUs, see
benchmarks/RESULTS.md; tf.data's autotuner on many-core and accelerator hosts). The data and training layers only
call these.

Settings are values, passed explicitly: a training run chooses its :class:`RuntimeSettings` once (with its strategy
and flags) and hands them to its pipelines and ``compile``; a caller that passes none gets :func:`default_settings`.
:func:`dataset_options` and :func:`compile_options` can be called any time; this module imports TensorFlow only
inside functions.
"""

import dataclasses
import functools
from typing import Optional

from keras_convnets import checks
from keras_convnets.runtime.machine import Machine, detect_machine
from keras_convnets.runtime.precision import Precision, choose_precision

#: A CPU with at most this many cores gets the settings measured on our 2-core machines; a bigger one, tf.data's
#: autotuner (which the measurement does not cover).
SMALL_CPU_CORES = 4
#: Steps per ``tf.function`` call on a CPU: 8 was slower than 1 on a 2-core CPU (Keras 3's while_loop over optional
#: inputs costs more than the per-step Python round trip it saves), so 1 (benchmarks/RESULTS.md,
#: "steps_per_execution").
CPU_STEPS_PER_EXECUTION = 1
#: On a TPU every call of the train function is a host round trip; Keras' and Cloud TPU's guidance is tens of steps
#: per call. Not measured here (no TPU).
TPU_STEPS_PER_EXECUTION = 32


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

    On JAX (``machine.backend``) the input pipelines are the same tf.data pipelines, chosen as above, and XLA is on
    everywhere: Keras' JAX trainer compiles its steps with ``jax.jit`` only when ``jit_compile`` is on, and runs them
    op by op otherwise (``--jit-compile off`` still does, e.g. to debug).
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
    if machine.backend == "jax":
        chosen = dataclasses.replace(chosen, jit_compile=True,
                                     reason=f"{chosen.reason}; JAX: every step compiled by XLA (jax.jit)")
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
