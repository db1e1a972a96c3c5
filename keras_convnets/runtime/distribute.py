"""The one place a run's strategy is chosen from its name (``--strategy``), and what the rest of training needs to
know about it (replicas, which worker writes files, how input is sharded, what scope it runs in).

On Keras' TensorFlow backend a strategy is a ``tf.distribute`` strategy:

- ``default``: TensorFlow's default strategy, one device.
- ``mirrored``: ``MirroredStrategy`` over this machine's GPUs, or over its logical CPU devices when it has no GPU
  (synchronous data parallelism, gradients all-reduced).
- ``multi-worker``: ``MultiWorkerMirroredStrategy``; the cluster comes from ``TF_CONFIG``. It runs on tf-keras
  (Keras 2): with Keras 3.15, ``model.fit`` under this strategy fails on every worker (CONTRIBUTING.md, "Pitfalls"), so
  ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is imported. The ``keras-convnets`` command does that
  itself (:func:`needs_legacy_keras` is what it asks); Python callers set the variable themselves.
- ``tpu``: ``TPUStrategy`` on the TPU a ``TPUClusterResolver`` finds (``$TPU_NAME``, or the local TPU of a TPU VM).
- ``auto``: ``tpu`` when a TPU is found, ``multi-worker`` when ``TF_CONFIG`` names more than one worker,
  ``mirrored`` when more than one GPU is visible, else ``default``.

On Keras' JAX backend it is a :class:`KerasDistribution`, which has the two members the training loop reads of a
``tf.distribute`` strategy (``scope()``, ``num_replicas_in_sync``):

- ``default``: one device, no distribution.
- ``data-parallel``: ``keras.distribution.DataParallel`` (Keras' engine, not ours) over every device JAX sees: this
  host's GPUs or TPU cores, its CPU devices (one unless ``XLA_FLAGS=--xla_force_host_platform_device_count=N``), or
  every host's after ``jax.distributed.initialize``. Variables are replicated; each global batch is split along its
  first axis over the devices, and XLA computes the loss, the gradients and the batch-norm statistics over the whole
  global batch (the one-device function, within float32 summation order: ``tests/test_train_jax.py``).
- ``auto``: ``data-parallel`` when JAX sees more than one device, else ``default``.
- ``mirrored``, ``multi-worker``, ``tpu``: ``tf.distribute`` strategies, refused in one line.

Several JAX hosts (multi-host data parallelism): every host runs the same command with
``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (the coordinator's ``host:port`` first, or all of them),
``KERAS_DISTRIBUTION_NUM_PROCESSES`` and its own ``KERAS_DISTRIBUTION_PROCESS_ID``: :func:`get_strategy` then calls
``keras.distribution.initialize()`` (``jax.distributed.initialize``) before JAX lists its devices, process 0 writes
the run's files, and Keras gives each process its part of every global batch of the tf.data pipeline
(``DataParallel``'s ``auto_shard_dataset``).

The functions that only read the environment (:func:`tf_config`, :func:`cluster_size`, :func:`is_chief_task`,
:func:`needs_legacy_keras`) import no TensorFlow, so the command line can decide before TensorFlow starts.
"""

import contextlib
import dataclasses
import json
import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

#: Names accepted by :func:`get_strategy`.
STRATEGIES = ("auto", "default", "mirrored", "multi-worker", "tpu", "data-parallel")
#: The ``tf.distribute`` strategies (Keras' TensorFlow backend only), and Keras' JAX distribution.
TENSORFLOW_STRATEGIES = ("mirrored", "multi-worker", "tpu")
JAX_STRATEGIES = ("data-parallel",)
#: The environment of a multi-host JAX run, read by ``keras.distribution.initialize``.
JAX_CLUSTER_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                   "KERAS_DISTRIBUTION_PROCESS_ID")

LEGACY_KERAS_ENV = "TF_USE_LEGACY_KERAS"
MULTIWORKER_INSTALL = 'pip install -e ".[multiworker]"'
#: Environment variables that say a TPU is meant to be used (Cloud TPU, Colab, GKE).
_TPU_ENV = ("TPU_NAME", "COLAB_TPU_ADDR", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS", "TPU_ACCELERATOR_TYPE")


class StrategyError(ValueError):
    """The strategy cannot be made here (unknown name, no TPU, no tf-keras for multi-worker, bad TF_CONFIG)."""


def tf_config(environ=None) -> dict:
    """The parsed ``TF_CONFIG`` (``{}`` when unset); a :class:`StrategyError` when it is not JSON."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        config = json.loads(raw)
    except ValueError:
        raise StrategyError(f"TF_CONFIG is not valid JSON: {raw[:80]!r}") from None
    cluster, task = (config.get(key) or {} for key in ("cluster", "task")) if isinstance(config, dict) else (0, 0)
    if not isinstance(cluster, dict) or not isinstance(task, dict) or not isinstance(task.get("index", 0), int):
        raise StrategyError("TF_CONFIG must be a JSON object with 'cluster' (task type -> addresses) and 'task' "
                            '({"type": ..., "index": an integer})')
    return config


def cluster_size(environ=None) -> int:
    """How many training tasks (``chief`` + ``worker``) ``TF_CONFIG`` names; 1 without a ``TF_CONFIG``."""
    cluster = tf_config(environ).get("cluster") or {}
    return max(1, sum(len(cluster.get(kind) or []) for kind in ("chief", "worker")))


def is_chief_task(environ=None) -> bool:
    """Whether this process is the one that writes files: the ``chief`` task, or ``worker`` 0 of a cluster without
    one (the tf.distribute convention), or any process outside a multi-worker cluster."""
    config = tf_config(environ)
    task = config.get("task") or {}
    if cluster_size(environ) <= 1 or not task:
        return True
    cluster = config.get("cluster") or {}
    kind, index = task.get("type"), int(task.get("index", 0))
    return kind == "chief" or (kind == "worker" and index == 0 and not cluster.get("chief"))


def task_name(environ=None) -> str:
    """``chief-0``, ``worker-1``, ...: this process's task in ``TF_CONFIG`` (``local`` outside a cluster)."""
    task = tf_config(environ).get("task") or {}
    return f"{task.get('type')}-{int(task.get('index', 0))}" if task and cluster_size(environ) > 1 else "local"


def _tpu_hinted(environ) -> bool:
    return any(environ.get(name) for name in _TPU_ENV) or os.path.exists("/dev/accel0") or \
        os.path.exists("/dev/vfio/0")


def needs_legacy_keras(name: str, environ=None) -> bool:
    """Whether the strategy ``name`` resolves to multi-worker training here, which must run on tf-keras.

    Reads only the environment (no TensorFlow import): ``multi-worker``, or ``auto`` with a multi-worker
    ``TF_CONFIG`` and no TPU in sight."""
    environ = os.environ if environ is None else environ
    if name == "multi-worker":
        return True
    return name == "auto" and cluster_size(environ) > 1 and not _tpu_hinted(environ)


def legacy_keras_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tf_keras") is not None


def resolve(name: str = "auto") -> str:
    """The concrete strategy name ``name`` stands for on this machine (``auto`` resolved)."""
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}")
    if name != "auto":
        return name
    if _tpu_hinted(os.environ) and _tpu_resolver(quiet=True) is not None:
        return "tpu"
    if cluster_size() > 1:
        return "multi-worker"
    import tensorflow as tf

    return "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"


def _tpu_resolver(quiet=False):
    import tensorflow as tf

    tpu = os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR") or "local"
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        if quiet:
            return None
        raise StrategyError(f"no TPU found ({' '.join(str(error).split())[:160]}); set TPU_NAME or run on a "
                            "TPU VM, or choose another --strategy") from None


def check_keras_for_multi_worker():
    """A :class:`StrategyError` unless tf-keras is installed and is the ``tf.keras`` of this process."""
    from keras_convnets.models.backend import KERAS_3

    if not legacy_keras_available():
        raise StrategyError(f"multi-worker training runs on tf-keras, which is not installed: {MULTIWORKER_INSTALL}")
    if KERAS_3:
        raise StrategyError(f"multi-worker training runs on tf-keras: set {LEGACY_KERAS_ENV}=1 before TensorFlow is "
                            "imported (the keras-convnets command does this itself)")


def check_backend(name: str) -> None:
    """A one-line ValueError when the strategy ``name`` does not exist on this process's Keras backend:
    :data:`TENSORFLOW_STRATEGIES` off TensorFlow, :data:`JAX_STRATEGIES` off JAX."""
    from keras_convnets.models.backend import BACKEND, require_tensorflow

    if name in TENSORFLOW_STRATEGIES:
        require_tensorflow(f"--strategy {name}", "a tf.distribute strategy; on jax, --strategy data-parallel or auto "
                                                 "is keras.distribution.DataParallel")
    if name in JAX_STRATEGIES and BACKEND != "jax":
        raise StrategyError(f"--strategy {name} is keras.distribution.DataParallel, which needs Keras' JAX backend "
                            f"(KERAS_BACKEND=jax); this process runs Keras on {BACKEND} (on tensorflow: --strategy "
                            "mirrored)")


def get_strategy(name: str = "auto"):
    """The strategy called ``name``: a ``tf.distribute`` strategy on Keras' TensorFlow backend, a
    :class:`KerasDistribution` on JAX.

    Args:
        name: one of :data:`STRATEGIES` (see the module docstring; ``auto`` chooses by the machine).

    Returns:
        The strategy. A :class:`StrategyError` (a ValueError, one line) for an unknown name, no TPU for ``tpu``,
        ``multi-worker`` without tf-keras loaded, or a strategy of another backend (:func:`check_backend`).
    """
    from keras_convnets.models.backend import BACKEND

    if name not in STRATEGIES:
        resolve(name)  # the unknown name's error
    check_backend(name)
    if BACKEND == "jax":
        return _jax_strategy(name)
    import tensorflow as tf

    concrete = resolve(name)
    if concrete == "default":
        return tf.distribute.get_strategy()
    if concrete == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        # No GPU: one replica per logical CPU device (several only if configured before TF started).
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    if concrete == "multi-worker":
        check_keras_for_multi_worker()
        if cluster_size() <= 1:
            logger.info("TF_CONFIG names no multi-worker cluster: multi-worker strategy with this process alone")
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = _tpu_resolver()
    try:
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise StrategyError(f"no usable TPU here ({' '.join(str(error).split())[:160]})") from None
    return tf.distribute.TPUStrategy(resolver)


@dataclasses.dataclass(frozen=True)
class KerasDistribution:
    """A run's devices on Keras' JAX backend: ``distribution`` is ``keras.distribution.DataParallel`` over them, or
    None for one device; ``chief`` whether this process writes the run's files (JAX's process 0). ``scope()`` and
    ``num_replicas_in_sync`` are what the training loop reads of a ``tf.distribute`` strategy; unlike one, the
    distribution must be current while ``fit`` runs too (Keras lays out each batch by it): :func:`run_scope`."""

    distribution: Any = None
    chief: bool = True

    def scope(self):
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()

    @property
    def num_replicas_in_sync(self) -> int:
        return 1 if self.distribution is None else int(self.distribution.device_mesh.devices.size)


def _jax_strategy(name: str) -> KerasDistribution:
    """:func:`get_strategy` on JAX (the module docstring): a multi-host cluster joined first
    (``keras.distribution.initialize``, when its environment names one), then ``data-parallel`` over every device
    JAX sees, or one device."""
    import jax

    from keras_convnets.models.backend import keras

    if any(os.environ.get(variable) for variable in JAX_CLUSTER_ENV) and not jax.distributed.is_initialized():
        keras.distribution.initialize()  # jax.distributed.initialize from KERAS_DISTRIBUTION_*
    devices = keras.distribution.list_devices()
    chief = jax.process_index() == 0
    if name == "default" or (name == "auto" and len(devices) == 1):
        return KerasDistribution(None, chief)
    return KerasDistribution(keras.distribution.DataParallel(devices=devices), chief)


def needs_whole_batches(strategy) -> bool:
    """Whether every batch ``fit`` and ``evaluate`` get must be whole (a multiple of the replicas): on JAX, which
    splits each batch evenly over its devices and compiles a step per batch shape. The run then drops each epoch's
    last partial training batch and pads the evaluation's with rows of weight 0
    (:func:`keras_convnets.data.pipelines.padded_batches`). ``tf.distribute`` takes partial batches."""
    return isinstance(strategy, KerasDistribution)


def process_count(strategy) -> int:
    """How many processes share ``strategy``'s batches through Keras (a multi-host :class:`KerasDistribution`: JAX's
    process count); 1 otherwise (``tf.distribute`` shards its own way: :func:`shard_by_data`)."""
    if not isinstance(strategy, KerasDistribution) or strategy.distribution is None:
        return 1
    import jax

    return jax.process_count()


def run_scope(strategy):
    """What a whole run holds current: a :class:`KerasDistribution`'s scope (Keras distributes variables made and
    batches fed inside it), nothing for a ``tf.distribute`` strategy (whose scope is only for making variables)."""
    return strategy.scope() if isinstance(strategy, KerasDistribution) else contextlib.nullcontext()


def strategy_label(strategy) -> str:
    """A short name for messages: ``MirroredStrategy``, ``MultiWorkerMirroredStrategy``, ``DataParallel``, ..."""
    if isinstance(strategy, KerasDistribution):
        return "one device" if strategy.distribution is None else "DataParallel (keras.distribution)"
    if is_multi_worker(strategy):
        return "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy
    name = type(strategy).__name__
    return "default strategy" if name.startswith("_Default") else name


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files under ``strategy`` (single-process strategies: always)."""
    if isinstance(strategy, KerasDistribution):
        return strategy.chief
    resolver = getattr(strategy, "cluster_resolver", None)
    kind = getattr(resolver, "task_type", None)
    if kind is None or type(strategy).__name__ == "TPUStrategy":
        return True
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` is TensorFlow's multi-worker one, whose input this package shards
    (:func:`shard_by_data`); a multi-host :class:`KerasDistribution`'s is sharded by Keras itself."""
    if isinstance(strategy, KerasDistribution):
        return False
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def shard_by_data(dataset):
    """``dataset`` with tf.distribute's auto-sharding set to DATA.

    Each worker runs the whole (seeded, hence identical) pipeline and keeps only its own part of every global
    batch, so no two workers train on the same examples within a step. FILE sharding would need at least as many
    input files as workers (tfds writes CIFAR as one file per split) and would change what a seeded run sees."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
