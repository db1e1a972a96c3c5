"""How training computes, chosen per machine (:func:`choose_precision`: bf16 only where the CPU computes it
natively, Keras' mixed policies only where they pay), and TensorFlow's oneDNN bf16 graph rewrite
(:func:`onednn_bf16`)."""

import contextlib
import dataclasses

from keras_convnets import checks
from keras_convnets.runtime.machine import Machine

#: ``precision`` values of a run. ``bf16``: bfloat16 compute with float32 variables; ``auto``: ``bf16`` where the CPU
#: computes bf16 natively and there is no accelerator, else float32; the Keras policies as Keras defines them.
PRECISIONS = ("float32", "bf16", "auto", "mixed_float16", "mixed_bfloat16")
#: TensorFlow's grappler option that rewrites a graph's oneDNN ops to bfloat16 (process-wide, read per function call).
ONEDNN_BF16_OPTION = "auto_mixed_precision_onednn_bfloat16"
#: The hint a float32 run prints on a CPU with native bf16: the median train-step images/s ratios bf16 / float32 of
#: ResNet-20, WRN-16-4, ResNet-50 and DenseNet-121 on a 2-core AMX Xeon (benchmarks/RESULTS.md, "Fourth session").
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
      and the loss (softmax cross-entropy, on TensorFlow's deny list) stay float32. Faster than float32 and than
      Keras' ``mixed_bfloat16`` policy on an AMX Xeon (benchmarks/RESULTS.md, "Fourth session"); AVX512-BF16
      without AMX (AMD Zen 4) and Arm BF16: unmeasured.
    * ``bf16`` on a GPU or TPU host: Keras' ``mixed_bfloat16`` policy (bf16 units of TPUs and Ampere+ GPUs);
      unmeasured here.
    * ``bf16`` on a CPU without native bf16 or without oneDNN kernels: a :class:`PrecisionError`: it would be
      emulated and slower than float32 (tensorflow/tensorflow#42422), never chosen silently.
    * ``auto``: ``bf16`` where it is the CPU case above, else float32 (also on GPU/TPU hosts: pass ``bf16`` there).
    * ``mixed_float16`` on a CPU-only host, ``mixed_bfloat16`` on one without native bf16: a :class:`PrecisionError`,
      as for ``bf16``: CPUs have no float16 training kernels, and bfloat16 without native support is emulated; both
      train slower than float32.
    * ``float32``, and ``mixed_float16`` / ``mixed_bfloat16`` elsewhere: that Keras policy, as asked.

    On JAX (``machine.backend``) the oneDNN rewrite, a TensorFlow grappler pass, does not exist: ``bf16`` is Keras'
    ``mixed_bfloat16`` policy wherever it may run (accelerators, and CPUs with native bf16, where XLA computes it:
    unmeasured here), refused as above on a CPU without native bf16; ``auto`` is float32 on a CPU (bf16 was measured
    to pay only through the rewrite).
    """
    checks.one_of("precision", requested, PRECISIONS)
    if machine.backend != "tensorflow":
        return _keras_backend_precision(machine, requested)
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


def _keras_backend_precision(machine: Machine, requested: str) -> Precision:
    """:func:`choose_precision` off TensorFlow (JAX): Keras' policies only."""
    if requested == "bf16" and (machine.accelerators or machine.native_bf16):
        where = "a GPU/TPU host" if machine.accelerators else "a native bf16 CPU, computed by XLA"
        return Precision(requested, "mixed_bfloat16", False, f"bf16 on {machine.backend}: Keras' mixed_bfloat16 "
                                                             f"policy on {where} (TensorFlow's oneDNN rewrite does not "
                                                             "exist there); unmeasured here")
    if requested == "bf16":
        raise PrecisionError("precision bf16 cannot run on a CPU without native bf16 (no amx_bf16, avx512_bf16 or "
                             "Arm bf16), where it is emulated and slower than float32; use --precision float32 or "
                             "auto")
    _check_keras_policy(machine, requested)
    if requested == "auto":
        why = "GPU/TPU host: pass bf16 for mixed_bfloat16" if machine.accelerators else (
            f"bf16 was measured to pay only through TensorFlow's oneDNN rewrite; on {machine.backend} pass bf16 for "
            "mixed_bfloat16")
        return Precision(requested, "float32", False, f"auto: {why}")
    return Precision(requested, requested, False, "as asked")


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
