"""What runs only on TensorFlow, imported only where Keras runs on it (``backend.BACKEND == "tensorflow"``):

* **the fused batch-norm kernel**, Keras 3's training fast path on the TensorFlow backend. Keras 3 dropped tf-keras'
  ``fused=True`` and computes batch norm as ~10 elementwise ops (``moments`` + ``batch_normalization``) and their
  gradients; one ``FusedBatchNormV3`` op forward and one backward (which oneDNN rewrites) are ~10% of a DenseNet-121
  training step on a 2-core CPU (benchmarks/RESULTS.md). JAX compiles Keras' arithmetic with XLA, and PyTorch runs
  it as written: neither has this kernel, and neither reaches this module.
* **the tf-keras (Keras 2) branches**: tf-keras has no ``keras.ops`` or ``keras.random`` and runs only on
  TensorFlow, so the layers' Keras 2 paths (zero padding, the stochastic-depth draw, the memory-efficient DenseNet
  layer's recomputation) are TensorFlow ops, here.
"""

import tensorflow as tf


def fusable(bn, x) -> bool:
    """True if a Keras 3 BatchNormalization's training branch on ``x`` is what TF's fused kernel computes: float32
    NHWC, per-replica statistics, no renormalisation."""
    return (len(x.shape) == 4 and bn.axis in (3, -1) and x.dtype == tf.float32 and not bn.synchronized
            and not getattr(bn, "renorm", False))


def fused_batch_norm_training(bn, x):
    """``(y, mean, variance)`` of a Keras 3 BatchNormalization's training branch on ``x`` (:func:`fusable`) in one
    ``FusedBatchNormV3`` op: ``y`` normalised with the batch statistics, ``variance`` the biased one (what Keras 3
    averages into its moving variance)."""
    channels = int(x.shape[-1])
    gamma = tf.cast(bn.gamma, tf.float32) if bn.scale else tf.ones([channels], tf.float32)
    beta = tf.cast(bn.beta, tf.float32) if bn.center else tf.zeros([channels], tf.float32)
    y, mean, unbiased, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x, scale=gamma, offset=beta, mean=tf.zeros([channels], tf.float32),
        variance=tf.ones([channels], tf.float32), epsilon=bn.epsilon, exponential_avg_factor=1.0,
        data_format="NHWC", is_training=True)
    # The kernel returns Bessel's unbiased variance (n / (n - 1), 1 when n = 1); Keras 3 averages the biased one.
    n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
    return y, mean, unbiased * tf.maximum(n - 1.0, 0.0) / n


# ------------------------------------------------------------------------------------- tf-keras (Keras 2) branches

def pad(x, paddings):
    """``tf.pad``: tf-keras' zero padding of any axes (``keras.ops.pad`` under Keras 3)."""
    return tf.pad(x, paddings)


def drop_examples(x, survival: float, seed):
    """``x`` with each example kept with probability ``survival`` and scaled by ``1 / survival``, else zeroed:
    stochastic depth's draw under tf-keras (Keras 3 draws with ``keras.random`` from a SeedGenerator)."""
    shape = tf.concat([tf.shape(x)[:1], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0)
    keep = tf.cast(tf.random.uniform(shape, seed=seed) < survival, x.dtype)
    return x * keep / tf.cast(survival, x.dtype)


def _normalize_with_batch_stats(bn, x):
    """tf-keras' ``bn(x, training=True)`` without touching its moving statistics: the fused kernel where the layer
    is fused, else ``_moments`` + ``tf.nn.batch_normalization`` (e.g. synchronized, float64)."""
    x = tf.cast(x, bn.compute_dtype)
    channels = int(x.shape[bn.axis[0]])
    gamma = bn.gamma if bn.scale else tf.ones([channels], bn._param_dtype)  # pylint: disable=protected-access
    beta = bn.beta if bn.center else tf.zeros([channels], bn._param_dtype)  # pylint: disable=protected-access
    if bn.fused:
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=bn.epsilon, is_training=True,
                                                   data_format=bn._data_format)  # pylint: disable=protected-access
        return y
    ndim = len(x.shape)
    reduction_axes = [i for i in range(ndim) if i not in bn.axis]
    mean, variance = bn._moments(tf.cast(x, bn._param_dtype), reduction_axes,  # pylint: disable=protected-access
                                 keep_dims=True)
    shape = [channels if i in bn.axis else 1 for i in range(ndim)]
    y = tf.nn.batch_normalization(x, tf.cast(mean, x.dtype), tf.cast(variance, x.dtype),
                                  tf.cast(tf.reshape(beta, shape), x.dtype), tf.cast(tf.reshape(gamma, shape), x.dtype),
                                  bn.epsilon)
    return tf.cast(y, x.dtype)


def recomputed_conv_keras2(layer, features, training):
    """The memory-efficient DenseNet layer's call under tf-keras: ``conv(relu(norm(concat(features))))``, in training
    inside ``tf.recompute_grad``. Its first run is the forward pass, where the tf-keras BN layer itself runs and
    updates its moving statistics as in the plain model (tf-keras' own averaging formula); the recomputation in
    backprop normalises with the batch statistics only. (Keras 3 returns the statistics from the recomputed function
    and assigns them outside it: :class:`keras_convnets.models.recompute.RecomputedConv`.)"""
    def concat(tensors):
        return tensors[0] if len(tensors) == 1 else tf.concat(tensors, axis=layer.channel_axis)

    if not training:
        return layer.conv(tf.nn.relu(layer.norm(concat(features), training=False)))
    passes = []

    def concat_norm_relu_conv(*tensors):
        recomputing = bool(passes)
        passes.append(None)
        x = concat(tensors)
        if recomputing and layer.norm.trainable:
            y = _normalize_with_batch_stats(layer.norm, x)
        else:  # the forward pass; a frozen BN (trainable=False) updates nothing either way
            y = layer.norm(x, training=True)
        return layer.conv(tf.nn.relu(y))

    return tf.recompute_grad(concat_norm_relu_conv)(*features)


def build_in_name_scope(layer, input_shape) -> None:
    """Builds a tf-keras layer inside a tf name scope of its own name: tf-keras names variables from the enclosing
    tf name scope (Keras 3 enters the layer's own scope in ``build``)."""
    with tf.name_scope(layer.name):
        layer.build(input_shape)
        layer._build_input_shape = input_shape  # pylint: disable=protected-access
