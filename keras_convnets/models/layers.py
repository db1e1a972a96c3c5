"""Layers Keras does not ship: the papers' two parameter-free layers, and a batch norm whose training step runs
TensorFlow's fused kernel where Keras runs on TensorFlow.

Written with ``keras.ops`` / ``keras.random``, so they run on every Keras 3 backend (TensorFlow, JAX, PyTorch); the
TensorFlow-only code is :mod:`keras_convnets.models.tf_ops`, imported only on TensorFlow: the fused batch-norm fast
path (:data:`FUSED_BATCH_NORM`, the one backend check) and the tf-keras (Keras 2) branches, where ``keras.ops`` does
not exist.
"""

from keras_convnets import checks
from keras_convnets.models.backend import BACKEND, KERAS_3, keras

if BACKEND == "tensorflow":  # Keras 3 on TensorFlow, or tf-keras (which runs only there)
    from keras_convnets.models import tf_ops
if KERAS_3:
    ops = keras.ops

#: Batch norm in training runs TensorFlow's fused kernel: Keras 3 on the TensorFlow backend only. Keras 3 computes
#: batch norm as ~10 elementwise ops and their gradients, ~10% of a DenseNet-121 training step on TensorFlow on a
#: 2-core CPU more than the fused kernel (benchmarks/RESULTS.md); JAX (XLA) and PyTorch run Keras' own arithmetic.
#: (tf-keras' BatchNormalization is fused already.)
FUSED_BATCH_NORM = KERAS_3 and BACKEND == "tensorflow"

#: The package name our layers are registered under: a ``.keras`` file names them ``keras_convnets>OptionAShortcut``.
SERIALIZATION_PACKAGE = "keras_convnets"


def serializable(cls):
    """Registers a layer class with Keras where it is defined (``keras.saving.register_keras_serializable``, tf-keras's
    too), so that a saved model naming it loads once its module has been imported (:func:`keras_convnets.load_model`
    makes sure of that)."""
    return keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)(cls)


@serializable
class OptionAShortcut(keras.layers.Layer):
    """He et al. (2015) CIFAR shortcut option A: subsample by ``stride``, zero-pad the new channels.

    Parameter-free, so CIFAR ResNet-20 has 269,722 trainable weights as in the paper. The padded channels are split
    evenly before and after the input's (the common reading of "extra zero entries padded").
    """

    def __init__(self, out_channels, stride=2, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.out_channels = int(out_channels)
        self.stride = int(stride)
        self.data_format = data_format

    def call(self, x):
        channels_last = self.data_format == "channels_last"
        x = x[:, ::self.stride, ::self.stride, :] if channels_last else x[:, :, ::self.stride, ::self.stride]
        extra = self.out_channels - x.shape[-1 if channels_last else 1]
        channels = [extra // 2, extra - extra // 2]
        paddings = [[0, 0], [0, 0], [0, 0], channels] if channels_last else [[0, 0], channels, [0, 0], [0, 0]]
        return ops.pad(x, paddings) if KERAS_3 else tf_ops.pad(x, paddings)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis in spatial:
            shape[axis] = None if shape[axis] is None else -(-shape[axis] // self.stride)
        shape[-1 if self.data_format == "channels_last" else 1] = self.out_channels
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "stride": self.stride,
                "data_format": self.data_format}


@serializable
class StochasticDepth(keras.layers.Layer):
    """Drops a residual branch per example with probability ``1 - survival``, Huang et al. (2016).

    We use the inverted form: in training a kept branch is scaled by ``1 / survival`` so inference is the identity,
    equal in expectation to the paper's "scale by ``survival`` at test time" and free at serving time. Under Keras 3
    the draws come from a ``keras.random.SeedGenerator`` (its state is a variable of the layer, not a weight: weight
    files are unchanged), as Keras' own Dropout draws, so they differ per step under ``jit`` on every backend.
    """

    def __init__(self, survival, seed=None, **kwargs):
        super().__init__(**kwargs)
        checks.number_in("survival", survival, 0.0, 1.0, low_open=True)
        self.survival = float(survival)
        self.seed = seed
        if KERAS_3:
            self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.survival == 1.0:
            return x
        if not KERAS_3:
            return tf_ops.drop_examples(x, self.survival, self.seed)
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        keep = ops.cast(keras.random.uniform(shape, seed=self.seed_generator) < self.survival, x.dtype)
        return x * keep / ops.cast(self.survival, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "survival": self.survival, "seed": self.seed}


def batch_norm_training(bn, x):
    """``(y, mean, variance)`` of a Keras 3 BatchNormalization layer's training branch on ``x``, moving statistics
    untouched: ``y`` normalised with the batch statistics, ``variance`` the biased one (what Keras 3 averages).

    TensorFlow's fused kernel where :data:`FUSED_BATCH_NORM` and the input allows it (float32 NHWC, per-replica
    statistics); otherwise the layer's own arithmetic (``_moments`` + ``ops.batch_normalization``, computed in at
    least float32 as the layer does), e.g. on JAX and PyTorch, synchronized or mixed precision.
    """
    if FUSED_BATCH_NORM and tf_ops.fusable(bn, x):
        return tf_ops.fused_batch_norm_training(bn, x)
    x = ops.cast(x, keras.backend.result_type(x.dtype, "float32"))
    mean, variance = bn._moments(x, None)  # pylint: disable=protected-access
    gamma = ops.cast(bn.gamma, x.dtype) if bn.scale else None
    beta = ops.cast(bn.beta, x.dtype) if bn.center else None
    y = ops.batch_normalization(x, mean, variance, axis=bn.axis, offset=beta, scale=gamma, epsilon=bn.epsilon)
    return ops.cast(y, bn.compute_dtype), mean, variance


def update_moving_statistics(bn, mean, variance) -> None:
    """Averages batch statistics into a Keras 3 BatchNormalization's moving ones, as its training branch does."""
    moving_mean = ops.cast(bn.moving_mean, mean.dtype)
    moving_variance = ops.cast(bn.moving_variance, variance.dtype)
    bn.moving_mean.assign(moving_mean * bn.momentum + mean * (1.0 - bn.momentum))
    bn.moving_variance.assign(moving_variance * bn.momentum + variance * (1.0 - bn.momentum))


class BatchNormalization(keras.layers.BatchNormalization):
    """Keras 3's BatchNormalization, same weights, names, constants and maths, whose training step on TensorFlow is
    the fused batch-norm kernel (:data:`FUSED_BATCH_NORM`) instead of Keras 3's ~10 elementwise ops and their
    gradients. On JAX and PyTorch, and on TensorFlow for inference, masks, renorm, ``synchronized=True`` and
    non-float32 inputs, it is the parent unchanged. Moving statistics are updated as Keras 3 does (biased batch
    variance; the kernel's Bessel correction is undone). Under tf-keras BatchNormalization is already fused and this
    class is not used.

    It serialises as the parent (same class name, ``module`` ``keras.layers``): Keras 3 weights files name a model's
    layers by class name (``batch_normalization_12``), so keras.applications' ``.weights.h5`` files load into our
    models and back, and a ``.keras`` file of our model loads anywhere without this package, as Keras' own layer (the
    same maths, unfused).
    """

    __module__ = "keras.layers"  # what `serialize_keras_object` records; see above

    def call(self, inputs, training=None, mask=None):
        if not (FUSED_BATCH_NORM and training and self.trainable and mask is None and tf_ops.fusable(self, inputs)):
            return super().call(inputs, training=training, mask=mask)
        y, mean, variance = tf_ops.fused_batch_norm_training(self, inputs)
        update_moving_statistics(self, mean, variance)
        return y

__all__ = ["OptionAShortcut", "StochasticDepth"]
