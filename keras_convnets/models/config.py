"""The one place where layer defaults are decided.

``LayerConfig`` is resolved once per model (data format, dtype policy, batch-norm constants, initializer, coupled L2)
and passed down to every block, so blocks read no global state and no literal such as ``epsilon=1.001e-5`` is repeated.
"""

import dataclasses
from typing import Any, Optional

from keras_convnets.models.backend import KERAS_3, keras, layers
from keras_convnets.models.layers import BatchNormalization

#: He initialisation in torchvision's form (normal, fan_out), used by the papers' reference code.
HE_FAN_OUT = {"class_name": "VarianceScaling",
              "config": {"scale": 2.0, "mode": "fan_out", "distribution": "untruncated_normal"}}


@dataclasses.dataclass(frozen=True)
class LayerConfig:
    """How every conv, norm and activation of one model is made.

    ``bn_momentum``/``bn_epsilon``: keras.applications uses 0.99 / 1.001e-5; PyTorch (and so the CIFAR papers'
    reference code) 0.9 / 1e-5. ``weight_decay`` is the papers' coupled L2 coefficient in PyTorch's convention
    (``weight_decay=1e-4`` adds ``1e-4 * w`` to the gradient), applied as ``L2(weight_decay / 2)`` to conv and dense
    kernels. ``sync_bn`` makes batch statistics global across replicas under a ``tf.distribute`` strategy.
    ``zero_init_residual``: the layer that ends a residual branch (``ends_residual=True``: the last BN of a v1 block,
    the last conv of a pre-activation block) starts at zero, so every block starts as the identity (Goyal et al.,
    2017; torchvision's ``zero_init_residual``, timm's ``zero_init_last`` for pre-activation blocks).
    """

    data_format: str = "channels_last"
    dtype: Any = None
    bn_epsilon: float = 1.001e-5
    bn_momentum: float = 0.99
    conv_bias: bool = False
    kernel_initializer: Any = "glorot_uniform"
    weight_decay: float = 0.0
    sync_bn: bool = False
    zero_init_residual: bool = False

    @property
    def channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def channels(self, x) -> int:
        return int(x.shape[self.channel_axis])

    def _regularizer(self):
        return keras.regularizers.L2(self.weight_decay / 2) if self.weight_decay else None

    def _zero(self, ends_residual: bool) -> bool:
        return ends_residual and self.zero_init_residual

    def conv(self, filters: int, kernel_size: int, strides: int = 1, padding: str = "same", *, groups: int = 1,
             use_bias: Optional[bool] = None, ends_residual: bool = False, name: str):
        return layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, groups=groups,
            use_bias=self.conv_bias if use_bias is None else use_bias,
            kernel_initializer="zeros" if self._zero(ends_residual) else self.kernel_initializer,
            kernel_regularizer=self._regularizer(),
            data_format=self.data_format, dtype=self.dtype, name=name)

    def bn(self, *, ends_residual: bool = False, name: str):
        kwargs = dict(axis=self.channel_axis, momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                      gamma_initializer="zeros" if self._zero(ends_residual) else "ones", dtype=self.dtype, name=name)
        # Keras 3 and tf-keras both take `synchronized`: batch statistics all-reduced across replicas. Under Keras 3
        # our subclass runs the fused kernel in training (tf-keras' own layer already does).
        if KERAS_3:
            return BatchNormalization(synchronized=self.sync_bn, **kwargs)
        return layers.BatchNormalization(synchronized=self.sync_bn, **kwargs)

    def relu(self, *, name: str):
        return layers.Activation("relu", dtype=self.dtype, name=name)

    def pad(self, padding: int, *, name: str):
        return layers.ZeroPadding2D(padding, data_format=self.data_format, dtype=self.dtype, name=name)

    def max_pool(self, pool_size: int, strides: int, *, name: str):
        return layers.MaxPooling2D(pool_size, strides=strides, data_format=self.data_format, dtype=self.dtype,
                                   name=name)

    def avg_pool(self, pool_size: int, strides: int, *, name: str):
        return layers.AveragePooling2D(pool_size, strides=strides, data_format=self.data_format, dtype=self.dtype,
                                       name=name)

    def dropout(self, rate: float, *, name: str):
        return layers.Dropout(rate, dtype=self.dtype, name=name)

    def add(self, *, name: str):
        return layers.Add(dtype=self.dtype, name=name)

    def concat(self, *, name: str):
        return layers.Concatenate(axis=self.channel_axis, dtype=self.dtype, name=name)

    def dense(self, units: int, activation: Any = None, *, name: str, dtype: Optional[Any] = None):
        return layers.Dense(units, activation=activation, kernel_regularizer=self._regularizer(),
                            dtype=self.dtype if dtype is None else dtype, name=name)

    def global_pool(self, kind: str, *, name: str):
        cls = layers.GlobalAveragePooling2D if kind == "avg" else layers.GlobalMaxPooling2D
        return cls(data_format=self.data_format, dtype=self.dtype, name=name)


#: keras.applications' own constants (eps 1.001e-5, Keras' momentum 0.99, conv biases where it has them).
KERAS_APPLICATIONS = LayerConfig()
#: PyTorch's / the papers' reference constants: BN momentum 0.1 in PyTorch terms (0.9 here), eps 1e-5, He init.
TORCH = LayerConfig(bn_epsilon=1e-5, bn_momentum=0.9, kernel_initializer=HE_FAN_OUT)

__all__ = ["LayerConfig"]
