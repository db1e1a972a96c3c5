"""The two parameter-free layers the papers need and Keras does not ship, written for Keras 3 and tf-keras alike."""

import tensorflow as tf

from keras_convnets.config import keras


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


class StochasticDepth(keras.layers.Layer):
    """Drops a residual branch per example with probability ``1 - survival``, Huang et al. (2016).

    We use the inverted form: in training a kept branch is scaled by ``1 / survival`` so inference is the identity,
    equal in expectation to the paper's "scale by ``survival`` at test time" and free at serving time.
    """

    def __init__(self, survival, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < survival <= 1.0:
            raise ValueError(f"survival probability must be in (0, 1], got {survival}")
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
