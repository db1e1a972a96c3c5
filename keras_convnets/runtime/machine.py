"""The machine a run lands on, as the settings see it: CPU cores, accelerators, the Keras backend that computes
(TensorFlow, whether it runs oneDNN kernels, or JAX) and the CPU's native bf16 instructions (:class:`Machine`,
:func:`detect_machine`)."""

import dataclasses
import os
from typing import Optional, Tuple

from keras_convnets.runtime.startup import onednn_enabled

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
    """What the settings depend on: CPU cores, accelerators, whether TensorFlow runs oneDNN kernels, the CPU's
    native bf16 instructions (:func:`cpu_bf16_flags`) and the Keras ``backend`` that trains (``"tensorflow"`` or
    ``"jax"``; on JAX, TensorFlow runs only the tf.data input pipelines and ``onednn`` is False)."""

    cpu_cores: int
    gpus: int = 0
    tpu_cores: int = 0
    onednn: bool = False
    bf16_flags: Tuple[str, ...] = ()
    backend: str = "tensorflow"

    @property
    def accelerators(self) -> int:
        return self.gpus + self.tpu_cores

    @property
    def native_bf16(self) -> bool:
        return bool(self.bf16_flags)

    def describe(self) -> str:
        kernels = "XLA" if self.backend == "jax" else "oneDNN" if self.onednn else "Eigen"
        bf16 = f", native bf16 ({', '.join(self.bf16_flags)})" if self.bf16_flags else ""
        devices = (f", {self.gpus} GPU(s)" if self.gpus else "") + (f", {self.tpu_cores} TPU core(s)"
                                                                     if self.tpu_cores else "")
        on = f"Keras on {self.backend}: " if self.backend != "tensorflow" else ""
        return f"{on}{self.cpu_cores}-core CPU ({kernels} kernels){bf16}{devices}"


def detect_machine(strategy=None) -> Machine:
    """This process' :class:`Machine`. On TensorFlow (imported here) TPU cores are counted from a ``TPUStrategy``;
    on JAX the accelerators are JAX's devices (after ``jax.distributed.initialize``, when a multi-host run calls
    it: :func:`keras_convnets.runtime.distribute.get_strategy`)."""
    from keras_convnets.models.backend import BACKEND

    if BACKEND == "jax":
        import jax  # pylint: disable=import-outside-toplevel

        platforms = [device.platform for device in jax.devices()]
        return Machine(cpu_cores=os.cpu_count() or 1, gpus=platforms.count("gpu"), tpu_cores=platforms.count("tpu"),
                       bf16_flags=cpu_bf16_flags(), backend="jax")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tpu_cores = 0
    if strategy is not None and "TPU" in type(strategy).__name__:
        tpu_cores = strategy.num_replicas_in_sync
    return Machine(cpu_cores=os.cpu_count() or 1, gpus=len(tf.config.list_physical_devices("GPU")),
                   tpu_cores=tpu_cores, onednn=onednn_enabled(), bf16_flags=cpu_bf16_flags())
