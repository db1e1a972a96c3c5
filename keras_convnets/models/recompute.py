"""Memory-efficient DenseNet layers (Pleiss et al., 2017): recompute concat -> BN -> ReLU -> conv in the backward pass.

A dense layer's input is the concatenation of every earlier feature map of its block, so storing that concatenation
and its BN and ReLU outputs for the backward pass costs memory quadratic in the block's depth. :class:`RecomputedConv`
takes the *list* of feature maps and returns only the conv's output (``4k`` channels in DenseNet-BC, ``k`` without
bottlenecks); under ``training`` the concat, BN, ReLU and conv run inside :func:`tf.recompute_grad`, so none of their
intermediates is kept: the backward pass recomputes them from the feature maps, which the block keeps anyway.

Batch-norm moving statistics are updated exactly once per step: the forward pass calls the BN layer itself
(``training=True``, so its assignments run as in the plain model); the recomputation, which runs again during
backprop, normalises with the batch statistics through :func:`normalize_with_batch_stats`, the same arithmetic as the
layer's training branch minus the assignments.

Weights: the BN (``{name}_0_bn``) and conv (``{name}_1_conv`` / ``{name}_2_conv``) are sublayers built before the
wrapper is first called, at top level, so their variables have the plain model's names (tf-keras ``conv2_block1_0_bn/
gamma:0``, Keras 3 path ``conv2_block1_0_bn/gamma``) and the same order in ``model.weights``: ``get_weights`` /
``set_weights`` move weights between the plain and the memory-efficient model. The ReLU has no weights and no layer.
"""

import tensorflow as tf

from keras_convnets.models.backend import KERAS_3, keras
from keras_convnets.models.layers import batch_norm_training, serializable


def _build_at_top_level(layer, input_shape):
    """Builds ``layer`` outside the wrapper's name scope, so its variables are named as in the plain model."""
    if layer.built:
        return
    if KERAS_3:
        layer.build(input_shape)          # Keras 3 enters the layer's own name scope in build
    else:
        with tf.name_scope(layer.name):   # tf-keras names variables from the enclosing tf name scope
            layer.build(input_shape)
            layer._build_input_shape = input_shape  # pylint: disable=protected-access


def _broadcast_shape(ndim, axes, channels):
    shape = [1] * ndim
    for axis in axes:
        shape[axis] = channels
    return shape


def normalize_with_batch_stats(bn: "keras.layers.BatchNormalization", x: tf.Tensor) -> tf.Tensor:
    """``bn(x, training=True)`` without touching ``bn``'s moving statistics: the same arithmetic as the layer's
    training branch (Keras 3: :func:`keras_convnets.models.layers.batch_norm_training`; tf-keras: the fused kernel, or
    ``_moments`` + ``tf.nn.batch_normalization`` when the layer is not fused, e.g. synchronized)."""
    if KERAS_3:
        return batch_norm_training(bn, x)[0]
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
    shape = _broadcast_shape(ndim, bn.axis, channels)
    y = tf.nn.batch_normalization(x, tf.cast(mean, x.dtype), tf.cast(variance, x.dtype),
                                  tf.cast(tf.reshape(beta, shape), x.dtype), tf.cast(tf.reshape(gamma, shape), x.dtype),
                                  bn.epsilon)
    return tf.cast(y, x.dtype)


@serializable
class RecomputedConv(keras.layers.Layer):
    """``conv(relu(norm(concat(features))))``, recomputed in the backward pass when training.

    ``norm`` is a BatchNormalization layer and ``conv`` a Conv2D, both made by the caller (so they carry the plain
    model's names and constants); ``channel_axis`` is the concatenation axis. Outside training (inference, export)
    it is the plain computation, so a SavedModel of a memory-efficient model is the plain model's graph.
    """

    def __init__(self, norm: "keras.layers.BatchNormalization", conv: "keras.layers.Conv2D", channel_axis: int = -1,
                 **kwargs):
        super().__init__(**kwargs)
        self.channel_axis = channel_axis
        self.norm = norm
        self.conv = conv

    @property
    def weights(self):
        # The plain model's order, BN's (gamma, beta, moving mean, moving variance) then the conv's; tf-keras would
        # otherwise list all trainable weights before the non-trainable ones.
        return self.norm.weights + self.conv.weights

    def _concat_shape(self, input_shape):
        shapes = [tuple(shape) for shape in (input_shape if isinstance(input_shape, list) else [input_shape])]
        concat_shape = list(shapes[0])
        concat_shape[self.channel_axis] = sum(shape[self.channel_axis] for shape in shapes)
        return tuple(concat_shape)

    def build_sublayers(self, input_shape: list) -> None:
        """Builds ``norm`` and ``conv`` for inputs of ``input_shape`` (a list of shapes). Call it before the
        layer's first call, outside any name scope, to give their variables the plain model's names; ``build``
        does it otherwise, inside this layer's scope (Keras 3 then prefixes paths with this layer's name)."""
        _build_at_top_level(self.norm, self._concat_shape(input_shape))
        _build_at_top_level(self.conv, self._concat_shape(input_shape))

    def build(self, input_shape):
        self.build_sublayers(input_shape)
        self.built = True

    def _concat(self, features):
        return features[0] if len(features) == 1 else tf.concat(features, axis=self.channel_axis)

    def call(self, inputs, training=None):
        features = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not training:
            return self.conv(tf.nn.relu(self.norm(self._concat(features), training=False)))

        passes = []

        def concat_norm_relu_conv(*tensors):
            # The first call is the forward pass: the BN layer runs as in the plain model and updates its moving
            # statistics. Later calls are tf.recompute_grad's recomputation during backprop: batch statistics
            # only. (A frozen BN, trainable=False, updates nothing either way, so it is always called.)
            recomputing = bool(passes)
            passes.append(None)
            x = self._concat(list(tensors))
            if recomputing and self.norm.trainable:
                y = normalize_with_batch_stats(self.norm, x)
            else:
                y = self.norm(x, training=True)
            return self.conv(tf.nn.relu(y))

        return tf.recompute_grad(concat_norm_relu_conv)(*features)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(self._concat_shape(input_shape))

    def get_config(self):
        return {**super().get_config(), "channel_axis": self.channel_axis,
                "norm": keras.layers.serialize(self.norm), "conv": keras.layers.serialize(self.conv)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        norm = keras.layers.deserialize(config.pop("norm"))
        conv = keras.layers.deserialize(config.pop("conv"))
        return cls(norm, conv, **config)


__all__ = ["RecomputedConv", "normalize_with_batch_stats"]
