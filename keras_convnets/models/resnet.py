"""ResNet v1 and v2, ResNeXt and Wide ResNet, ImageNet and CIFAR: spec tables and one builder.

An :class:`Architecture` says everything that distinguishes one variant (block function and its options, stage
widths and depths, stem, layer constants); :func:`build_resnet` turns it into a Keras model. The named factories
(``ResNet50``, ``WRN28_10``, ...) and the general builders (``WideResNet(depth, width)``, ...) only pick one.

Layouts, where the field disagrees:

* ``ResNet50/101/152`` and the ``V2`` models are keras.applications' own: conv biases, stride on the first 1x1
  conv (v1), stride on the last block of a stage (v2), BN eps 1.001e-5. Their weights load from keras.applications.
* ``ResNet18/34``, ``ResNeXt50_32x4d``, ``ResNeXt101_32x8d``, ``WideResNet50_2`` are torchvision's: no conv bias,
  stride on the 3x3 conv ("v1.5"), BN eps 1e-5 and momentum 0.9 (PyTorch's 0.1).
* CIFAR ResNets (He et al., 2015, sec. 4.2): 3x3 stem of 16, stages of 16/32/64 filters, n = (depth - 2) / 6
  basic blocks each, parameter-free option-A shortcuts.
* Pre-activation ResNet-164/1001 (He et al., 2016b): bottleneck blocks, n = (depth - 2) / 9, projection shortcuts.
* Wide ResNet (Zagoruyko & Komodakis, 2016): pre-activation basic blocks of width 16k/32k/64k, n = (depth - 4) / 6,
  dropout between the convs.
* ResNeXt-29 (Xie et al., 2017): 64-filter 3x3 stem, 3 stages of (depth - 2) / 9 bottlenecks, cardinality C and
  group width d at the first stage, doubled per stage, stride on the 3x3.
"""

import dataclasses
from typing import Callable, Optional, Tuple

from keras_convnets.models import application, blocks
from keras_convnets.models.config import KERAS_APPLICATIONS, TORCH, LayerConfig


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One residual network: ``stages`` is ``((filters, blocks), ...)``; the first stage keeps the resolution."""

    block: Callable
    stages: Tuple[Tuple[int, int], ...]
    stem: str                      # "imagenet": 7x7/2 conv + 3x3/2 max-pool; "cifar": 3x3 conv
    stem_width: int
    config: LayerConfig
    preact: bool = False           # pre-activation: no BN-ReLU after the stem, a final BN-ReLU ("post_bn")
    stride_last: bool = False      # keras.applications' ResNetV2 strides in the last block of a stage
    block_options: Tuple[Tuple[str, object], ...] = ()
    default_size: int = 224
    default_classes: int = 1000

    @property
    def min_size(self) -> int:
        """The total stride: inputs smaller than this would be pooled away."""
        return (4 if self.stem == "imagenet" else 1) * 2 ** (len(self.stages) - 1)

    @property
    def num_blocks(self) -> int:
        return sum(n for _, n in self.stages)


def _imagenet(block, stage_sizes, config, **block_options):
    widths = (64, 128, 256, 512)
    return Architecture(block, tuple(zip(widths, stage_sizes)), "imagenet", 64, config,
                        preact=block is blocks.preact_bottleneck_block,
                        stride_last=block is blocks.preact_bottleneck_block,
                        block_options=tuple(block_options.items()))


def _cifar(block, widths, n, stem_width, config, preact=False, **block_options):
    return Architecture(block, tuple((w, n) for w in widths), "cifar", stem_width, config, preact=preact,
                        block_options=tuple(block_options.items()), default_size=32, default_classes=10)


#: ImageNet depth -> (block kind, blocks per stage), He et al. (2015), Table 1.
IMAGENET_DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
                   101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}

_KERAS_V1 = dataclasses.replace(KERAS_APPLICATIONS, conv_bias=True)
_TORCHVISION_BOTTLENECK = {"stride_on": "3x3"}


def imagenet_resnet(depth, layout="torchvision", groups=1, base_width=64) -> Architecture:
    """ImageNet ResNet of ``depth`` in one of three layouts: ``"keras"`` (v1), ``"keras_v2"``, ``"torchvision"``."""
    if depth not in IMAGENET_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(IMAGENET_DEPTHS)} for an ImageNet ResNet; got {depth!r}")
    kind, sizes = IMAGENET_DEPTHS[depth]
    if layout == "keras_v2":
        return _imagenet(blocks.preact_bottleneck_block, sizes, _KERAS_V1, groups=groups, base_width=base_width)
    if kind == "basic":
        if layout != "torchvision" or groups != 1 or base_width != 64:
            raise ValueError(f"ResNet-{depth} has basic blocks: only the torchvision layout, groups=1, base_width=64")
        return _imagenet(blocks.residual_block, sizes, TORCH)
    if layout == "keras":
        return _imagenet(blocks.bottleneck_block, sizes, _KERAS_V1, groups=groups, base_width=base_width)
    if layout == "torchvision":
        return _imagenet(blocks.bottleneck_block, sizes, TORCH, groups=groups, base_width=base_width,
                         **_TORCHVISION_BOTTLENECK)
    raise ValueError(f"layout must be 'keras', 'keras_v2' or 'torchvision'; got {layout!r}")


def _blocks_per_stage(family, depth, fixed, per_block):
    """``(depth - fixed) / per_block`` blocks per stage, or a ValueError naming the depths the family can build."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth <= fixed or (depth - fixed) % per_block:
        raise ValueError(f"depth for {family} must be {per_block}n+{fixed} with n >= 1 "
                         f"(e.g. {per_block + fixed}, {2 * per_block + fixed}, {3 * per_block + fixed}); got {depth!r}")
    return (depth - fixed) // per_block


def cifar_resnet(depth) -> Architecture:
    """He et al. (2015) CIFAR ResNet: 6n+2 layers, option-A shortcuts."""
    n = _blocks_per_stage("a CIFAR ResNet", depth, 2, 6)
    return _cifar(blocks.residual_block, (16, 32, 64), n, 16, TORCH, shortcut_kind="zero_pad")


def preact_resnet(depth) -> Architecture:
    """He et al. (2016b) CIFAR pre-activation ResNet with bottlenecks: 9n+2 layers."""
    n = _blocks_per_stage("a pre-activation CIFAR ResNet", depth, 2, 9)
    return _cifar(blocks.preact_bottleneck_block, (16, 32, 64), n, 16, TORCH, preact=True)


def wide_resnet(depth, width) -> Architecture:
    """Zagoruyko & Komodakis (2016) WRN-depth-width: 6n+4 layers, widths 16k/32k/64k."""
    n = _blocks_per_stage("a Wide ResNet", depth, 4, 6)
    application.check_positive_int("width", width)
    return _cifar(blocks.preact_residual_block, (16 * width, 32 * width, 64 * width), n, 16, TORCH, preact=True)


def cifar_resnext(depth, cardinality, group_width) -> Architecture:
    """Xie et al. (2017) CIFAR ResNeXt-depth (Cxd): 9n+2 layers, 64-filter stem, outputs 256/512/1024."""
    n = _blocks_per_stage("a CIFAR ResNeXt", depth, 2, 9)
    application.check_positive_int("cardinality", cardinality)
    application.check_positive_int("group_width", group_width)
    return _cifar(blocks.bottleneck_block, (64, 128, 256), n, 64, TORCH, groups=cardinality,
                  base_width=group_width, stride_on="3x3")


def _stem(x, arch, config):
    if arch.stem == "imagenet":
        x = config.pad(3, name="conv1_pad")(x)
        x = config.conv(arch.stem_width, 7, 2, "valid", name="conv1_conv")(x)
    else:
        x = config.conv(arch.stem_width, 3, name="conv1_conv")(x)
    if not arch.preact:
        x = config.bn(name="conv1_bn")(x)
        x = config.relu(name="conv1_relu")(x)
    if arch.stem == "imagenet":
        x = config.pad(1, name="pool1_pad")(x)
        x = config.max_pool(3, 2, name="pool1_pool")(x)
    return x


def survival_probabilities(num_blocks, last):
    """Stochastic depth's linear decay rule (Huang et al., 2016, eq. 4): block l of L survives with
    ``1 - l / L * (1 - last)``, so the input (l = 0) is always kept and the last block survives with ``last``."""
    if last is None:
        return [1.0] * num_blocks
    if not 0.0 < last <= 1.0:
        raise ValueError(f"stochastic_depth (the last block's survival probability p_L) must be in (0, 1]; "
                         f"got {last!r}")
    return [1.0 - (l / num_blocks) * (1.0 - last) for l in range(1, num_blocks + 1)]


def _body(x, arch, config, survival, dropout):
    x = _stem(x, arch, config)
    options = dict(arch.block_options)
    if dropout:
        options["dropout"] = dropout
    index = 0
    last_stage = len(arch.stages) - 1
    for stage, (filters, count) in enumerate(arch.stages):
        for i in range(count):
            if arch.stride_last:  # keras.applications ResNetV2: a stage ends by halving the resolution
                stride = 2 if i == count - 1 and stage < last_stage else 1
            else:
                stride = 2 if i == 0 and stage > 0 else 1
            x = arch.block(x, filters, stride, survival=survival[index], config=config,
                           name=f"conv{stage + 2}_block{i + 1}", **options)
            index += 1
    if arch.preact:
        x = config.bn(name="post_bn")(x)
        x = config.relu(name="post_relu")(x)
    return x


def build_resnet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=None,
                 classifier_activation="softmax", name="resnet", *, architecture, weights_name=None,
                 stochastic_depth=None, dropout=0.0, data_format="channels_last", dtype=None, weight_decay=0.0,
                 sync_bn=False, zero_init_residual=False):
    """Builds ``architecture`` with the keras.applications arguments and these options:

    stochastic_depth: the last block's survival probability p_L (0.5 in the paper), or None.
    dropout: Wide ResNet's dropout between the convs of a block (0.3 in the paper).
    data_format, dtype: resolved once here and passed to every layer (dtype: a Keras dtype policy name such as
        "mixed_float16"; None uses the global policy).
    weight_decay: the paper's coupled L2 coefficient (PyTorch convention), on conv and dense kernels.
    sync_bn: synchronise batch-norm statistics across replicas under a tf.distribute strategy.
    zero_init_residual: start every residual branch at zero (its last BN's gamma in v1 blocks, its last conv in
        pre-activation blocks), so each block starts as the identity (Goyal et al., 2017). Off by default, as in
        the papers; it makes very deep untrained networks (ResNet-1202) well-scaled from the first step.
    """
    arch = architecture
    application.check_dropout(dropout)
    if dropout and arch.block is not blocks.preact_residual_block:
        raise ValueError("dropout is an option of Wide ResNet blocks only; use stochastic_depth for the others")
    config = application.layer_config(arch.config, data_format=data_format, dtype=dtype, weight_decay=weight_decay,
                                      sync_bn=sync_bn, zero_init_residual=zero_init_residual)
    survival = survival_probabilities(arch.num_blocks, stochastic_depth)
    return application.build(
        lambda x: _body(x, arch, config, survival, dropout), name=name, weights_name=weights_name or name,
        include_top=include_top, weights=weights, input_tensor=input_tensor, input_shape=input_shape,
        pooling=pooling, classes=arch.default_classes if classes is None else classes,
        classifier_activation=classifier_activation, default_size=arch.default_size, min_size=arch.min_size,
        config=config)


# General builders: any depth / width the papers describe.

def ResNet(depth, layout="torchvision", **kwargs):
    """ImageNet ResNet-``depth`` (18, 34, 50, 101, 152) in the ``"torchvision"``, ``"keras"`` or ``"keras_v2"``
    layout."""
    name = f"resnet{depth}" + ("v2" if layout == "keras_v2" else "")
    return build_resnet(architecture=imagenet_resnet(depth, layout), **{"name": name, **kwargs})


def CifarResNet(depth, **kwargs):
    """CIFAR ResNet-``depth`` (6n+2: 20, 32, 44, 56, 110, 1202, ...)."""
    return build_resnet(architecture=cifar_resnet(depth), **{"name": f"resnet{depth}", **kwargs})


def PreActResNet(depth, **kwargs):
    """CIFAR pre-activation bottleneck ResNet-``depth`` (9n+2: 164, 1001, ...)."""
    return build_resnet(architecture=preact_resnet(depth), **{"name": f"preact_resnet{depth}", **kwargs})


def WideResNet(depth, width, dropout=0.0, **kwargs):
    """CIFAR WRN-``depth``-``width`` (depth 6n+4), dropout between the convs (0.3 in the paper's best runs)."""
    return build_resnet(architecture=wide_resnet(depth, width), dropout=dropout,
                        **{"name": f"wrn_{depth}_{width}", **kwargs})


def ResNeXt(depth, cardinality, group_width, **kwargs):
    """CIFAR ResNeXt-``depth`` (9n+2) with ``cardinality`` groups of ``group_width`` channels at the first stage."""
    return build_resnet(architecture=cifar_resnext(depth, cardinality, group_width),
                        **{"name": f"resnext{depth}_{cardinality}x{group_width}d", **kwargs})


def _factory(factory_name, model_name, architecture, doc):
    return application.variant(build_resnet, factory_name, doc, architecture=architecture, name=model_name)


ResNet18 = _factory("ResNet18", "resnet18", imagenet_resnet(18), "ResNet-18, torchvision layout.")
ResNet34 = _factory("ResNet34", "resnet34", imagenet_resnet(34), "ResNet-34, torchvision layout.")
ResNet50 = _factory("ResNet50", "resnet50", imagenet_resnet(50, "keras"), "ResNet-50, keras.applications layout.")
ResNet101 = _factory("ResNet101", "resnet101", imagenet_resnet(101, "keras"),
                     "ResNet-101, keras.applications layout.")
ResNet152 = _factory("ResNet152", "resnet152", imagenet_resnet(152, "keras"),
                     "ResNet-152, keras.applications layout.")
ResNet50V2 = _factory("ResNet50V2", "resnet50v2", imagenet_resnet(50, "keras_v2"),
                      "Pre-activation ResNet-50, keras.applications' ResNet50V2.")
ResNet101V2 = _factory("ResNet101V2", "resnet101v2", imagenet_resnet(101, "keras_v2"),
                       "Pre-activation ResNet-101, keras.applications' ResNet101V2.")
ResNet152V2 = _factory("ResNet152V2", "resnet152v2", imagenet_resnet(152, "keras_v2"),
                       "Pre-activation ResNet-152, keras.applications' ResNet152V2.")
ResNeXt50_32x4d = _factory("ResNeXt50_32x4d", "resnext50_32x4d", imagenet_resnet(50, groups=32, base_width=4),
                           "ResNeXt-50 32x4d, torchvision layout.")
ResNeXt101_32x8d = _factory("ResNeXt101_32x8d", "resnext101_32x8d", imagenet_resnet(101, groups=32, base_width=8),
                            "ResNeXt-101 32x8d, torchvision layout.")
WideResNet50_2 = _factory("WideResNet50_2", "wide_resnet50_2", imagenet_resnet(50, base_width=128),
                          "Wide ResNet-50-2 (bottleneck twice as wide), torchvision layout.")

ResNet20 = _factory("ResNet20", "resnet20", cifar_resnet(20), "CIFAR ResNet-20 (C10 error 8.75%).")
ResNet32 = _factory("ResNet32", "resnet32", cifar_resnet(32), "CIFAR ResNet-32 (C10 error 7.51%).")
ResNet44 = _factory("ResNet44", "resnet44", cifar_resnet(44), "CIFAR ResNet-44 (C10 error 7.17%).")
ResNet56 = _factory("ResNet56", "resnet56", cifar_resnet(56), "CIFAR ResNet-56 (C10 error 6.97%).")
ResNet110 = _factory("ResNet110", "resnet110", cifar_resnet(110),
                     "CIFAR ResNet-110 (C10 error 6.43%; 5.23% with stochastic_depth=0.5).")
ResNet1202 = _factory("ResNet1202", "resnet1202", cifar_resnet(1202), "CIFAR ResNet-1202 (C10 error 7.93%).")
PreActResNet164 = _factory("PreActResNet164", "preact_resnet164", preact_resnet(164),
                           "Pre-activation ResNet-164 (C10+ error 5.46%).")
PreActResNet1001 = _factory("PreActResNet1001", "preact_resnet1001", preact_resnet(1001),
                            "Pre-activation ResNet-1001 (C10+ error 4.92%).")
WRN16_4 = _factory("WRN16_4", "wrn_16_4", wide_resnet(16, 4), "WRN-16-4 (C10+ error 5.02%).")
WRN16_8 = _factory("WRN16_8", "wrn_16_8", wide_resnet(16, 8), "WRN-16-8 (C10+ error 4.27%).")
WRN28_10 = _factory("WRN28_10", "wrn_28_10", wide_resnet(28, 10),
                    "WRN-28-10 (C10+ error 4.00%; 3.89% with dropout=0.3).")
WRN40_4 = _factory("WRN40_4", "wrn_40_4", wide_resnet(40, 4), "WRN-40-4 (C10+ error 4.53%).")
ResNeXt29_8x64d = _factory("ResNeXt29_8x64d", "resnext29_8x64d", cifar_resnext(29, 8, 64),
                           "CIFAR ResNeXt-29 8x64d (C10+ error 3.65%).")
ResNeXt29_16x64d = _factory("ResNeXt29_16x64d", "resnext29_16x64d", cifar_resnext(29, 16, 64),
                            "CIFAR ResNeXt-29 16x64d (C10+ error 3.58%).")
