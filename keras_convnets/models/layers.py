"""Layers Keras does not ship: the papers' two parameter-free layers (Keras 3 and tf-keras alike), and a batch norm
whose training step runs TensorFlow's fused kernel under Keras 3."""

import tensorflow as tf

from keras_convnets import checks
from keras_convnets.models.backend import keras

#: The package name our layers are registered under: a ``.keras`` file names them ``keras_convnets>OptionAShortcut``.
SERIALIZATION_PACKAGE = "keras_convnets"


def serializable(cls):
    """Registers a layer class for ``.keras`` files (``keras.saving.register_keras_serializable``, tf-keras's too)."""
    return keras.utils.register_keras_serializable(package=SERIALIZATION_PACKAGE)(cls)


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
        if self.data_format == "channels_last":
            x = x[:, ::self.stride, ::self.stride, :]
            extra = self.out_channels - x.shape[-1]
            return tf.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
        x = x[:, :, ::self.stride, ::self.stride]
        extra = self.out_channels - x.shape[1]
        return tf.pad(x, [[0, 0], [extra // 2, extra - extra // 2], [0, 0], [0, 0]])

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
    equal in expectation to the paper's "scale by ``survival`` at test time" and free at serving time.
    """

    def __init__(self, survival, seed=None, **kwargs):
        super().__init__(**kwargs)
        checks.number_in("survival", survival, 0.0, 1.0, low_open=True)
        self.survival = float(survival)
        self.seed = seed

    def call(self, x, training=None):
        if not training or self.survival == 1.0:
            return x
        batch = tf.shape(x)[0]
        shape = tf.concat([[batch], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0)
        keep = tf.cast(tf.random.uniform(shape, seed=self.seed) < self.survival, x.dtype)
        return x * keep / tf.cast(self.survival, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "survival": self.survival, "seed": self.seed}


def _fusable(bn, x):
    """True if ``bn``'s training branch on ``x`` is what TF's fused kernel computes: float32 NHWC, per-replica
    statistics, no renormalisation."""
    return (len(x.shape) == 4 and bn.axis in (3, -1) and x.dtype == tf.float32 and not bn.synchronized
            and not getattr(bn, "renorm", False))


def batch_norm_training(bn, x):
    """``(y, mean, variance)`` of a Keras 3 BatchNormalization layer's training branch on ``x``, moving statistics
    untouched: ``y`` normalised with the batch statistics, ``variance`` the biased one (what Keras 3 averages).

    Where :func:`_fusable`, one ``FusedBatchNormV3`` op forward and one backward (oneDNN rewrites both); otherwise
    the layer's own arithmetic (``_moments`` + ``ops.batch_normalization``), e.g. synchronized or mixed precision.
    """
    channels = int(x.shape[bn.axis])
    gamma = bn.gamma if bn.scale else tf.ones([channels], tf.float32)
    beta = bn.beta if bn.center else tf.zeros([channels], tf.float32)
    if _fusable(bn, x):
        y, mean, unbiased, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=tf.cast(gamma, tf.float32), offset=tf.cast(beta, tf.float32),
            mean=tf.zeros([channels], tf.float32), variance=tf.ones([channels], tf.float32),
            epsilon=bn.epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        # The kernel returns Bessel's unbiased variance (n / (n - 1), 1 when n = 1); Keras 3 averages the biased one.
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        return y, mean, unbiased * tf.maximum(n - 1.0, 0.0) / n
    compute = tf.float32 if x.dtype in (tf.float16, tf.bfloat16) else x.dtype
    x = tf.cast(x, compute)
    mean, variance = bn._moments(x, None)  # pylint: disable=protected-access
    y = keras.ops.batch_normalization(x, mean, variance, axis=bn.axis, offset=tf.cast(beta, compute),
                                      scale=tf.cast(gamma, compute), epsilon=bn.epsilon)
    return tf.cast(y, bn.compute_dtype), mean, variance


class BatchNormalization(keras.layers.BatchNormalization):
    """Keras 3's BatchNormalization, same weights, names, constants and maths, whose training step is TF's fused
    batch-norm kernel instead of Keras 3's ~10 elementwise ops (``moments`` + ``batch_normalization``) and their
    gradients.

    Keras 3 dropped tf-keras' ``fused=True``; on this 2-core CPU the unfused ops cost ~10% of a DenseNet-121
    training step (benchmarks/RESULTS.md). Moving statistics are updated as Keras 3 does (biased batch variance;
    the kernel's Bessel correction is undone). Inference, masks, renorm, ``synchronized=True`` and non-float32
    inputs take the parent's path unchanged. Under tf-keras BatchNormalization is already fused and this class is
    not used.

    It serialises as the parent (same class name, ``module`` ``keras.layers``): Keras 3 weights files name a model's
    layers by class name (``batch_normalization_12``), so keras.applications' ``.weights.h5`` files load into our
    models and back, and a ``.keras`` file of our model loads anywhere without this package, as Keras' own layer (the
    same maths, unfused).
    """

    __module__ = "keras.layers"  # what `serialize_keras_object` records; see above

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or not _fusable(self, inputs):
            return super().call(inputs, training=training, mask=mask)
        y, mean, variance = batch_norm_training(self, inputs)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return y

__all__ = ["OptionAShortcut", "StochasticDepth"]
