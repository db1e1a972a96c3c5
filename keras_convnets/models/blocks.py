"""Pure building blocks: each takes a Keras tensor and returns one, naming every layer from ``name``.

Names follow keras.applications (``conv2_block1_1_conv``, ``_1_bn``, ``_1_relu``, ``_add``, ``_out``, ``_0_conv`` for a
projection shortcut, ``_preact_bn`` for pre-activation, ``_concat`` for DenseNet), so weights load by name and
``model.get_layer(...)`` is reliable. Every layer is made through a
:class:`~keras_convnets.models.config.LayerConfig`, the single place that decides data format, dtype, batch-norm
constants, initializer and L2.

Choices where the field disagrees, each an argument:

* ``stride_on`` of the bottleneck: ``"1x1"`` is the original ResNet and keras.applications; ``"3x3"`` is
  torchvision's "ResNet v1.5", ResNeXt and Wide ResNet-50.
* ``shortcut`` when the shape changes: ``"projection"`` (1x1 conv, + BN after a post-activation block; option B) or
  ``"zero_pad"`` (subsample + zero channels, parameter-free; the CIFAR ResNets' option A). A shortcut whose channels
  match but whose stride is not 1 subsamples with a 1x1 max-pool, as keras.applications' ResNetV2 does.
* Pre-activation blocks (He et al., 2016b) take the projection shortcut from the pre-activated input, as the
  reference code and keras.applications' ResNetV2 do; a projection there has no BN.
"""

from typing import Any, Optional

from keras_convnets import checks
from keras_convnets.models.config import TORCH, LayerConfig
from keras_convnets.models.layers import OptionAShortcut, StochasticDepth
from keras_convnets.models.recompute import RecomputedConv

SHORTCUTS = ("projection", "zero_pad")
STRIDE_POSITIONS = ("1x1", "3x3")


def conv3x3(x, filters: int, stride: int = 1, *, groups: int = 1, use_bias: Optional[bool] = None,
            explicit_pad: bool = False, ends_residual: bool = False, config: LayerConfig = TORCH, name: str):
    """3x3 conv named ``{name}_conv``; strided ones pad 1 on every side first (``{name}_pad``), as PyTorch does.

    (Keras' ``padding="same"`` pads only bottom/right under stride 2, which shifts the sampling grid.)
    """
    padding = "same"
    if stride > 1 or explicit_pad:
        x = config.pad(1, name=f"{name}_pad")(x)
        padding = "valid"
    return config.conv(filters, 3, stride, padding, groups=groups, use_bias=use_bias, ends_residual=ends_residual,
                       name=f"{name}_conv")(x)


def shortcut(x, out_channels: int, stride: int = 1, kind: str = "projection", *, norm: bool = True, source=None,
             config: LayerConfig = TORCH, name: str):
    """The identity path of a residual block, changed only as much as the shape change needs.

    ``source`` is the tensor a projection reads (the pre-activated input in pre-activation blocks).
    """
    checks.one_of("shortcut", kind, SHORTCUTS)
    if config.channels(x) == out_channels:
        return x if stride == 1 else config.max_pool(1, stride, name=f"{name}_0_pool")(x)
    if kind == "zero_pad":
        if out_channels < config.channels(x):
            raise ValueError(f"shortcut='zero_pad' can only add channels: {config.channels(x)} -> {out_channels}")
        return OptionAShortcut(out_channels, stride, config.data_format, dtype=config.dtype,
                               name=f"{name}_0_pad")(x)
    y = config.conv(out_channels, 1, stride, name=f"{name}_0_conv")(x if source is None else source)
    return config.bn(name=f"{name}_0_bn")(y) if norm else y


def _merge(shortcut_tensor, residual, survival, config, name, add_name):
    """Adds the residual branch to the shortcut, dropping the branch per example when ``survival < 1``."""
    if survival < 1.0:
        residual = StochasticDepth(survival, dtype=config.dtype, name=f"{name}_drop_path")(residual)
    return config.add(name=add_name)([shortcut_tensor, residual])


def residual_block(x, filters: int, stride: int = 1, *, shortcut_kind: str = "projection", survival: float = 1.0,
                   config: LayerConfig = TORCH, name: str = "block"):
    """ResNet v1 basic block (He et al., 2015): 3x3 conv-BN-ReLU, 3x3 conv-BN, add, ReLU."""
    skip = shortcut(x, filters, stride, shortcut_kind, config=config, name=name)
    y = conv3x3(x, filters, stride, config=config, name=f"{name}_1")
    y = config.bn(name=f"{name}_1_bn")(y)
    y = config.relu(name=f"{name}_1_relu")(y)
    y = conv3x3(y, filters, config=config, name=f"{name}_2")
    y = config.bn(ends_residual=True, name=f"{name}_2_bn")(y)
    y = _merge(skip, y, survival, config, name, f"{name}_add")
    return config.relu(name=f"{name}_out")(y)


def bottleneck_width(filters: int, groups: int = 1, base_width: int = 64) -> int:
    """Width of the grouped 3x3 conv: torchvision's ``int(filters * base_width / 64) * groups``.

    ResNet: groups=1, base_width=64 (width = filters). ResNeXt 32x4d: groups=32, base_width=4. Wide ResNet-50-2:
    base_width=128.
    """
    return int(filters * base_width / 64) * groups


def bottleneck_block(x, filters: int, stride: int = 1, groups: int = 1, base_width: int = 64, *, expansion: int = 4,
                     stride_on: str = "1x1", shortcut_kind: str = "projection", survival: float = 1.0,
                     config: LayerConfig = TORCH, name: str = "block"):
    """ResNet v1 bottleneck: 1x1 conv, 3x3 (grouped) conv, 1x1 conv to ``expansion * filters``; also ResNeXt's and
    Wide ResNet-50's block through ``groups`` / ``base_width``."""
    checks.one_of("stride_on", stride_on, STRIDE_POSITIONS)
    width = bottleneck_width(filters, groups, base_width)
    out_channels = expansion * filters
    skip = shortcut(x, out_channels, stride, shortcut_kind, config=config, name=name)
    first_stride, middle_stride = (stride, 1) if stride_on == "1x1" else (1, stride)
    y = config.conv(width, 1, first_stride, name=f"{name}_1_conv")(x)
    y = config.bn(name=f"{name}_1_bn")(y)
    y = config.relu(name=f"{name}_1_relu")(y)
    y = conv3x3(y, width, middle_stride, groups=groups, config=config, name=f"{name}_2")
    y = config.bn(name=f"{name}_2_bn")(y)
    y = config.relu(name=f"{name}_2_relu")(y)
    y = config.conv(out_channels, 1, name=f"{name}_3_conv")(y)
    y = config.bn(ends_residual=True, name=f"{name}_3_bn")(y)
    y = _merge(skip, y, survival, config, name, f"{name}_add")
    return config.relu(name=f"{name}_out")(y)


def _preactivate(x, config, name):
    x = config.bn(name=f"{name}_preact_bn")(x)
    return config.relu(name=f"{name}_preact_relu")(x)


def preact_residual_block(x, filters: int, stride: int = 1, *, dropout: float = 0.0, shortcut_kind: str = "projection",
                          survival: float = 1.0, config: LayerConfig = TORCH, name: str = "block"):
    """Pre-activation basic block (He et al., 2016b): BN-ReLU-3x3 conv, BN-ReLU-[dropout]-3x3 conv, add.

    With ``dropout`` it is Wide ResNet's block (Zagoruyko & Komodakis, 2016), dropout between the two convs.
    """
    checks.number_in("dropout", dropout, 0.0, 1.0, high_open=True)
    pre = _preactivate(x, config, name)
    skip = shortcut(x, filters, stride, shortcut_kind, norm=False, source=pre, config=config, name=name)
    y = conv3x3(pre, filters, stride, use_bias=False, config=config, name=f"{name}_1")
    y = config.bn(name=f"{name}_1_bn")(y)
    y = config.relu(name=f"{name}_1_relu")(y)
    if dropout:
        y = config.dropout(dropout, name=f"{name}_dropout")(y)
    y = conv3x3(y, filters, ends_residual=True, config=config, name=f"{name}_2")
    return _merge(skip, y, survival, config, name, f"{name}_out")


def wide_block(x, filters: int, stride: int = 1, dropout: float = 0.0, **kwargs: Any):
    """Wide ResNet block: :func:`preact_residual_block` with dropout between the convs."""
    return preact_residual_block(x, filters, stride, dropout=dropout, **kwargs)


def preact_bottleneck_block(x, filters: int, stride: int = 1, groups: int = 1, base_width: int = 64, *,
                            expansion: int = 4, shortcut_kind: str = "projection", survival: float = 1.0,
                            config: LayerConfig = TORCH, name: str = "block"):
    """Pre-activation bottleneck (He et al., 2016b; keras.applications ResNetV2): BN-ReLU-1x1, BN-ReLU-3x3 (strided,
    always explicitly padded as keras.applications does), BN-ReLU-1x1, add. Convs followed by BN have no bias."""
    width = bottleneck_width(filters, groups, base_width)
    out_channels = expansion * filters
    pre = _preactivate(x, config, name)
    skip = shortcut(x, out_channels, stride, shortcut_kind, norm=False, source=pre, config=config, name=name)
    y = config.conv(width, 1, use_bias=False, name=f"{name}_1_conv")(pre)
    y = config.bn(name=f"{name}_1_bn")(y)
    y = config.relu(name=f"{name}_1_relu")(y)
    y = conv3x3(y, width, stride, groups=groups, use_bias=False, explicit_pad=True, config=config, name=f"{name}_2")
    y = config.bn(name=f"{name}_2_bn")(y)
    y = config.relu(name=f"{name}_2_relu")(y)
    y = config.conv(out_channels, 1, ends_residual=True, name=f"{name}_3_conv")(y)
    return _merge(skip, y, survival, config, name, f"{name}_out")


def _first_dense_conv(k, bottleneck, bottleneck_width, config, name):
    """A dense layer's first conv: the 1x1 bottleneck to ``bottleneck_width * k``, or without one the 3x3 to ``k``."""
    if bottleneck:
        return config.conv(bottleneck_width * k, 1, name=f"{name}_1_conv")
    return config.conv(k, 3, name=f"{name}_2_conv")


def _rest_of_dense_layer(y, k, bottleneck, dropout, config, name):
    """What follows a dense layer's first conv: [dropout-BN-ReLU-3x3 conv to ``k``], then dropout."""
    if bottleneck:
        if dropout:
            y = config.dropout(dropout, name=f"{name}_1_dropout")(y)
        y = config.bn(name=f"{name}_1_bn")(y)
        y = config.relu(name=f"{name}_1_relu")(y)
        y = config.conv(k, 3, name=f"{name}_2_conv")(y)
    if dropout:
        y = config.dropout(dropout, name=f"{name}_2_dropout")(y)
    return y


def dense_layer(x, k: int, bottleneck: bool = True, dropout: float = 0.0, *, bottleneck_width: int = 4,
                config: LayerConfig = TORCH, name: str = "layer"):
    """DenseNet composite layer (Huang et al., 2017): BN-ReLU-[1x1 conv to ``4k``-BN-ReLU]-3x3 conv to ``k``,
    concatenated to its input. Dropout, when set, follows each conv, as in the paper's reference code."""
    y = config.bn(name=f"{name}_0_bn")(x)
    y = config.relu(name=f"{name}_0_relu")(y)
    y = _first_dense_conv(k, bottleneck, bottleneck_width, config, name)(y)
    y = _rest_of_dense_layer(y, k, bottleneck, dropout, config, name)
    return config.concat(name=f"{name}_concat")([x, y])


def _efficient_dense_layer(features, k, bottleneck=True, dropout=0.0, *, bottleneck_width=4, config=TORCH,
                           name="layer"):
    """:func:`dense_layer` on the list of the block's feature maps, returning only the ``k`` new channels.

    concat-BN-ReLU-(first) conv run in one :class:`~keras_convnets.models.recompute.RecomputedConv`, recomputed in the
    backward pass (the 1x1 conv with bottlenecks; the 3x3 conv, the layer's only one, without). Same layers, names
    and constants as :func:`dense_layer`; the concatenation happens once per block, in :func:`dense_block`.
    """
    norm = config.bn(name=f"{name}_0_bn")
    conv = _first_dense_conv(k, bottleneck, bottleneck_width, config, name)
    recomputed = RecomputedConv(norm, conv, config.channel_axis, dtype=config.dtype, name=f"{name}_recomputed")
    recomputed.build_sublayers([tuple(f.shape) for f in features])   # variables named as in dense_layer
    return _rest_of_dense_layer(recomputed(features), k, bottleneck, dropout, config, name)


def dense_block(x, n: int, k: int, bottleneck: bool = True, dropout: float = 0.0, *, memory_efficient: bool = False,
                config: LayerConfig = TORCH, name: str = "block"):
    """``n`` dense layers of growth rate ``k``; layer ``i`` is named ``{name}_block{i}`` (keras.applications).

    ``memory_efficient``: keep the block's feature maps as a list and recompute each layer's concat-BN-ReLU-conv in
    the backward pass (Pleiss et al., 2017), concatenating once at the block's end as ``{name}_block{n}_concat``.
    Same weights (names, order, shapes) as the plain block; each layer's first BN and conv are sublayers of
    ``{name}_block{i}_recomputed`` there, so ``model.get_layer`` does not find them by name.
    """
    if not memory_efficient:
        for i in range(1, n + 1):
            x = dense_layer(x, k, bottleneck, dropout, config=config, name=f"{name}_block{i}")
        return x
    features = [x]
    for i in range(1, n + 1):
        features.append(_efficient_dense_layer(features, k, bottleneck, dropout, config=config,
                                               name=f"{name}_block{i}"))
    return config.concat(name=f"{name}_block{n}_concat")(features)


def transition(x, compression: float = 0.5, dropout: float = 0.0, *, config: LayerConfig = TORCH,
               name: str = "transition"):
    """DenseNet transition: BN-ReLU-1x1 conv to ``floor(compression * channels)``-[dropout]-2x2 average pool."""
    checks.number_in("compression", compression, 0.0, 1.0, low_open=True)
    x = config.bn(name=f"{name}_bn")(x)
    x = config.relu(name=f"{name}_relu")(x)
    x = config.conv(int(config.channels(x) * compression), 1, name=f"{name}_conv")(x)
    if dropout:
        x = config.dropout(dropout, name=f"{name}_dropout")(x)
    return config.avg_pool(2, 2, name=f"{name}_pool")(x)


__all__ = ["conv3x3", "shortcut", "residual_block", "bottleneck_block", "bottleneck_width",
           "preact_residual_block", "wide_block", "preact_bottleneck_block", "dense_layer", "dense_block",
           "transition"]
