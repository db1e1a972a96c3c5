"""Memory-efficient DenseNet layers (Pleiss et al., 2017): recompute concat -> BN -> ReLU -> conv in the backward pass.

A dense layer's input is the concatenation of every earlier feature map of its block, so storing that concatenation
and its BN and ReLU outputs for the backward pass costs memory quadratic in the block's depth. :class:`RecomputedConv`
takes the *list* of feature maps and returns only the conv's output (``4k`` channels in DenseNet-BC, ``k`` without
bottlenecks); under ``training`` the concat, BN, ReLU and conv run inside ``keras.remat`` (TensorFlow's
``tf.recompute_grad``, JAX's ``jax.checkpoint``, PyTorch's ``torch.utils.checkpoint``: Keras' rematerialisation on
every backend), so none of their intermediates is kept: the backward pass recomputes them from the feature maps,
which the block keeps anyway.

Batch-norm moving statistics are updated exactly once per step: the recomputed function is pure. It normalises with
the batch statistics (:func:`~keras_convnets.models.layers.batch_norm_training`, the BN layer's training arithmetic
without its assignments; TensorFlow's fused kernel on TensorFlow) and returns them beside the conv's output; the
layer averages them into the moving statistics outside the rematerialised function, once, in the forward pass, as the
BN layer's own training branch does. (Under tf-keras, which has no ``keras.remat``, the layer runs the Keras 2 branch
:func:`keras_convnets.models.tf_ops.recomputed_conv_keras2`.)

Weights: the BN (``{name}_0_bn``) and conv (``{name}_1_conv`` / ``{name}_2_conv``) are sublayers built before the
wrapper is first called, at top level, so their variables have the plain model's names (tf-keras ``conv2_block1_0_bn/
gamma:0``, Keras 3 path ``conv2_block1_0_bn/gamma``) and the same order in ``model.weights``: ``get_weights`` /
``set_weights`` move weights between the plain and the memory-efficient model. The ReLU has no weights and no layer.
"""

from keras_convnets.models.backend import KERAS_3, keras
from keras_convnets.models.layers import batch_norm_training, serializable, update_moving_statistics

if KERAS_3:
    ops = keras.ops
else:  # tf-keras: no keras.ops / keras.remat; its branch is TensorFlow's
    from keras_convnets.models import tf_ops


def _build_at_top_level(layer, input_shape):
    """Builds ``layer`` outside the wrapper's name scope, so its variables are named as in the plain model."""
    if layer.built:
        return
    if KERAS_3:
        layer.build(input_shape)          # Keras 3 enters the layer's own name scope in build
    else:
        tf_ops.build_in_name_scope(layer, input_shape)


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
        return features[0] if len(features) == 1 else ops.concatenate(features, axis=self.channel_axis)

    def call(self, inputs, training=None):
        features = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not KERAS_3:
            return tf_ops.recomputed_conv_keras2(self, features, training)
        if not training:
            return self._frozen_norm_conv(*features)
        if not self.norm.trainable:  # a frozen BN normalises with its moving statistics and updates nothing
            return keras.remat(self._frozen_norm_conv)(*features)
        y, mean, variance = keras.remat(self._batch_norm_conv)(*features)
        update_moving_statistics(self.norm, mean, variance)
        return y

    def _frozen_norm_conv(self, *features):
        """Inference, or training with a frozen BN: the plain computation with the moving statistics."""
        return self.conv(ops.relu(self.norm(self._concat(features), training=False)))

    def _batch_norm_conv(self, *features):
        """``(conv output, batch mean, batch variance)`` in training: pure (no assignment), so rematerialising it in
        the backward pass changes no state."""
        y, mean, variance = batch_norm_training(self.norm, self._concat(features))
        return self.conv(ops.relu(y)), mean, variance

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


__all__ = ["RecomputedConv"]
