"""CPU/throughput settings decided in one place (measured choices, see benchmarks/RESULTS.md): which kernels
TensorFlow uses, the threads of the process, the tf.data options of the input pipeline and the compile options of
training. The data and training modules only call these.

Call order: :func:`prefer_onednn` must run before TensorFlow is imported and :func:`configure_threads` before it
executes its first op (TF reads both once); the CLI calls them first thing. This module imports TensorFlow only
inside functions so that it can. :func:`dataset_options` and :func:`compile_options` can be called any time.
"""

import os
import sys

#: Environment variables that override the measured defaults (for experiments and unusual machines).
INTRA_ENV, INTER_ENV = "KERAS_CONVNETS_INTRA_OP_THREADS", "KERAS_CONVNETS_INTER_OP_THREADS"
#: TensorFlow's switch for its oneDNN CPU kernels, read once when TensorFlow is imported.
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"


def prefer_onednn() -> bool:
    """Turns on TensorFlow's oneDNN CPU kernels for this process unless ``TF_ENABLE_ONEDNN_OPTS`` is already set;
    returns whether they will be (or are) on.

    TensorFlow enables them by default only on CPUs with AVX512-VNNI/BF16/AMX (its 2.9 release notes); on this AVX2
    machine they are off, and turning them on trains ResNet-20 2.3x, DenseNet-BC-100 1.6x, WRN-16-4 1.3x and
    ResNet-50 at 32x32 5.8x faster (Eigen's conv backprop-input is pathological at 1x1 spatial size) with the same
    maths up to float rounding order (benchmarks/RESULTS.md). Effective only before TensorFlow is imported;
    afterwards it changes nothing and reports the state TensorFlow started with. ``TF_ENABLE_ONEDNN_OPTS=0`` keeps
    them off.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault(ONEDNN_ENV, "1")
        return os.environ[ONEDNN_ENV].strip().lower() in ("1", "true")
    return onednn_enabled()


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


#: tf.data's own thread pool: one thread does all the input work (decode, augment, batch) of a pipeline.
DATA_THREADS = 1
#: Train steps per ``tf.function`` call of ``model.fit``. Measured 1 vs 8 on this 2-core CPU at load ~3
#: (benchmarks/RESULTS.md, "steps_per_execution": ResNet-20, batch 64): 8 was 4.6% slower in 4 of 4 rounds
#: (Keras 3's while_loop over optional inputs costs more than the per-step Python round trip it saves), so 1.
STEPS_PER_EXECUTION = 1


def dataset_options():
    """The ``tf.data.Options`` applied to every input pipeline we build.

    The input work of a CIFAR pipeline (pad-crop-flip of 32x32 images, batching) is a few percent of one core, so
    it is given one private thread of its own and a fixed parallelism instead of tf.data's autotuner:

    * ``private_threadpool_size=1``: without it tf.data runs its functions on TensorFlow's inter-op pool, the
      same 2 threads (on 2 cores) that run the training step's ops, so input work queues behind (and preempts)
      the step's kernels;
    * ``autotune.enabled=False``: the autotuner's model thread and its ramping of map parallelism / prefetch
      buffers add runnable threads on a machine with no spare core (``num_parallel_calls=AUTOTUNE`` then means
      the private pool's size, and ``prefetch(AUTOTUNE)`` keeps its own simple buffer tuning);
    * ``max_intra_op_parallelism=1``: an input op never fans out over the compute pool.

    This is the setting that held fit at its full rate every epoch in issue 6 (benchmarks/RESULTS.md).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = DATA_THREADS
    options.threading.max_intra_op_parallelism = 1
    return options


def compile_options(info=None, steps_per_epoch=None) -> dict:
    """Extra ``model.compile`` keyword arguments for training the registered model ``info`` on this machine.

    ``steps_per_execution``: N steps per call of the compiled train function (a ``tf.while_loop`` inside it), the
    same maths step for step (the optimizer, learning-rate schedule and BN updates run every step); only the
    per-step Python overhead and callback calls go. Keras calls batch-level callbacks every N steps. On a finite
    dataset (what ``keras_convnets.training.data`` gives) every epoch is exact (checked: 11 batches, N=8 -> 11 optimizer
    steps). Keras 3 runs whole executions when ``fit`` gets ``steps_per_epoch`` on a repeated dataset, so pass that
    ``steps_per_epoch`` here and N becomes its largest divisor <= STEPS_PER_EXECUTION (the epoch stays exact).
    ``jit_compile=False``: XLA was slower for these convnets on this CPU (and Keras' "auto" already means False on
    a CPU-only machine; stated so it does not depend on that). ``info`` is accepted for per-model choices; none of
    the measured models needed one.
    """
    steps = STEPS_PER_EXECUTION
    if steps_per_epoch:
        steps = max(n for n in range(1, STEPS_PER_EXECUTION + 1) if int(steps_per_epoch) % n == 0)
    return {"steps_per_execution": steps, "jit_compile": False}
