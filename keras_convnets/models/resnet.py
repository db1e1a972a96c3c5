"""ResNet v1 and v2, ResNeXt and Wide ResNet, ImageNet and CIFAR: spec tables and one builder.

An :class:`Architecture` says everything that distinguishes one variant (block function and its options, stage
widths and depths, stem, layer constants); the shared builder (:func:`build_resnet`, i.e.
:func:`keras_convnets.models.application.build_model`) turns it into a Keras model. The named factories (``ResNet50``,
``WRN28_10``, ...), each defined and registered in one ``_register`` call at the end of this module, and the general
builders (``WideResNet(depth, width)``, ...) only pick one.

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
import re
from typing import Any, Callable, Mapping, Optional, Tuple

from keras_convnets import checks
from keras_convnets.models import application, blocks, torch_weights
from keras_convnets.models.config import KERAS_APPLICATIONS, TORCH, LayerConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class Architecture(application.Architecture):
    """One residual network: ``stages`` is ``((filters, blocks), ...)``; the first stage keeps the resolution.

    ``block`` is called as ``block(x, filters, stride, survival=..., config=..., name=..., **block_options)`` (plus
    ``dropout=`` when the model is built with one, which needs ``accepts_dropout``). ``stride_last``: a stage halves
    the resolution in its last block (keras.applications' ResNetV2) instead of its first.
    """

    DEFAULT_NAME = "resnet"

    block: Callable
    stages: Tuple[Tuple[int, int], ...]
    stride_last: bool = False
    block_options: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    accepts_stochastic_depth: bool = True
    accepts_zero_init_residual: bool = True

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def num_blocks(self) -> int:
        return sum(n for _, n in self.stages)

    def block_plan(self):
        """``(filters, stride, name)`` of every block, stage by stage; names are keras.applications'
        ``conv{stage}_block{i}``."""
        last_stage = len(self.stages) - 1
        for stage, (filters, count) in enumerate(self.stages):
            for i in range(count):
                if self.stride_last:
                    stride = 2 if i == count - 1 and stage < last_stage else 1
                else:
                    stride = 2 if i == 0 and stage > 0 else 1
                yield filters, stride, f"conv{stage + 2}_block{i + 1}"

    def torch_key_map(self) -> Optional[Callable[[str], Optional[str]]]:
        """:func:`torch_key` for the torchvision-layout ImageNet ResNets (v1.5, no conv biases); None for the CIFAR
        and pre-activation ones; a ValueError naming the layout to build for a keras.applications v1 ResNet."""
        if self.stem != "imagenet" or self.preact:
            return None
        if self.config.conv_bias:
            depth = 3 * self.num_blocks + 2
            raise ValueError(f"ResNet-{depth} here is in keras.applications' layout (conv biases, stride on the first "
                             "1x1 conv), which no torchvision/timm checkpoint fits; build "
                             f"keras_convnets.ResNet({depth}, layout=\"torchvision\") for torchvision's / timm's "
                             "weights")
        return torch_key

    def feature_maps(self, x, config, options):
        """The stem's maps, every block's output, and in a pre-activation network the final BN-ReLU (``post_relu``,
        what the classifier pools). Pyramid levels are thus the last block at each stride, the raw residual sum in a
        pre-activation network (timm's ``features_only`` and KerasHub's ``pyramid_outputs`` take the same), except
        the deepest level of a pre-activation network: ``post_relu``, the classifier's pre-pool activation."""
        maps = application.stem_maps(x, self, config)
        total_stride, x = maps[-1]
        block_options = dict(self.block_options)
        if options["dropout"]:
            block_options["dropout"] = options["dropout"]
        survival = survival_probabilities(self.num_blocks, options["stochastic_depth"])
        for (filters, stride, name), keep in zip(self.block_plan(), survival):
            x = self.block(x, filters, stride, survival=keep, config=config, name=name, **block_options)
            total_stride *= stride
            maps.append((total_stride, x))
        if self.preact:
            x = config.bn(name="post_bn")(x)
            maps.append((total_stride, config.relu(name="post_relu")(x)))
        return maps


#: The shared builder of both families, under this family's name.
build_resnet = application.build_model

IMAGENET_WIDTHS = (64, 128, 256, 512)
#: ImageNet depth -> (block kind, blocks per stage), He et al. (2015), Table 1.
IMAGENET_DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3)),
                   101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}
LAYOUTS = ("torchvision", "keras", "keras_v2")

_KERAS_V1 = dataclasses.replace(KERAS_APPLICATIONS, conv_bias=True)


def imagenet_resnet(depth: int, layout: str = "torchvision", groups: int = 1, base_width: int = 64) -> Architecture:
    """ImageNet ResNet of ``depth`` in one of three layouts: ``"keras"`` (v1), ``"keras_v2"``, ``"torchvision"``."""
    if depth not in IMAGENET_DEPTHS:
        checks.fail("depth", f"one of {sorted(IMAGENET_DEPTHS)} for an ImageNet ResNet", depth)
    checks.one_of("layout", layout, LAYOUTS)
    kind, sizes = IMAGENET_DEPTHS[depth]
    stages = tuple(zip(IMAGENET_WIDTHS, sizes))
    if kind == "basic" and (layout != "torchvision" or groups != 1 or base_width != 64):
        raise ValueError(f"ResNet-{depth} has basic blocks: only the torchvision layout, groups=1, base_width=64")
    if kind == "basic":
        return Architecture(block=blocks.residual_block, stages=stages, stem="imagenet", stem_width=64, config=TORCH)
    grouping = {"groups": groups, "base_width": base_width}
    if layout == "keras_v2":
        return Architecture(block=blocks.preact_bottleneck_block, stages=stages, stem="imagenet", stem_width=64,
                            config=_KERAS_V1, preact=True, stride_last=True, block_options=grouping)
    if layout == "keras":
        return Architecture(block=blocks.bottleneck_block, stages=stages, stem="imagenet", stem_width=64,
                            config=_KERAS_V1, block_options=grouping)
    return Architecture(block=blocks.bottleneck_block, stages=stages, stem="imagenet", stem_width=64, config=TORCH,
                        block_options={**grouping, "stride_on": "3x3"})


def torch_key(layer: str) -> Optional[str]:
    """torchvision's / timm's parameter prefix of one of our torchvision-layout ImageNet ResNet layers (``conv1``,
    ``bn1``, ``layer{stage}.{block}.conv{i}`` / ``.bn{i}`` / ``.downsample.{0,1}``, ``fc``), None for a layer they
    lack."""
    fixed = {"conv1_conv": "conv1", "conv1_bn": "bn1", "predictions": "fc"}
    if layer in fixed:
        return fixed[layer]
    match = re.fullmatch(r"conv(\d)_block(\d+)_(\d)_(conv|bn)", layer)
    if not match:
        return None
    stage, block, index, kind = int(match.group(1)) - 1, int(match.group(2)) - 1, int(match.group(3)), match.group(4)
    if index == 0:  # projection shortcut
        return f"layer{stage}.{block}.downsample.{0 if kind == 'conv' else 1}"
    return f"layer{stage}.{block}.{kind}{index}"


def _blocks_per_stage(family, depth, fixed, per_block):
    """``(depth - fixed) / per_block`` blocks per stage, or a ValueError naming the depths the family can build."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth <= fixed or (depth - fixed) % per_block:
        checks.fail(f"depth for {family}", f"{per_block}n+{fixed} with n >= 1 (e.g. {per_block + fixed}, "
                    f"{2 * per_block + fixed}, {3 * per_block + fixed})", depth)
    return (depth - fixed) // per_block


def _cifar(block, widths, n, stem_width, config: LayerConfig = TORCH, **fields) -> Architecture:
    return Architecture(block=block, stages=tuple((w, n) for w in widths), stem="cifar", stem_width=stem_width,
                        config=config, **fields)


def cifar_resnet(depth: int) -> Architecture:
    """He et al. (2015) CIFAR ResNet: 6n+2 layers, option-A shortcuts."""
    n = _blocks_per_stage("a CIFAR ResNet", depth, 2, 6)
    return _cifar(blocks.residual_block, (16, 32, 64), n, 16, block_options={"shortcut_kind": "zero_pad"})


def preact_resnet(depth: int) -> Architecture:
    """He et al. (2016b) CIFAR pre-activation ResNet with bottlenecks: 9n+2 layers."""
    n = _blocks_per_stage("a pre-activation CIFAR ResNet", depth, 2, 9)
    return _cifar(blocks.preact_bottleneck_block, (16, 32, 64), n, 16, preact=True)


def wide_resnet(depth: int, width: int) -> Architecture:
    """Zagoruyko & Komodakis (2016) WRN-depth-width: 6n+4 layers, widths 16k/32k/64k, dropout between the convs."""
    n = _blocks_per_stage("a Wide ResNet", depth, 4, 6)
    checks.positive_int("width", width)
    return _cifar(blocks.wide_block, (16 * width, 32 * width, 64 * width), n, 16, preact=True, accepts_dropout=True)


def cifar_resnext(depth: int, cardinality: int, group_width: int) -> Architecture:
    """Xie et al. (2017) CIFAR ResNeXt-depth (Cxd): 9n+2 layers, 64-filter stem, outputs 256/512/1024."""
    n = _blocks_per_stage("a CIFAR ResNeXt", depth, 2, 9)
    checks.positive_int("cardinality", cardinality)
    checks.positive_int("group_width", group_width)
    return _cifar(blocks.bottleneck_block, (64, 128, 256), n, 64,
                  block_options={"groups": cardinality, "base_width": group_width, "stride_on": "3x3"})


def survival_probabilities(num_blocks: int, last) -> list:
    """Stochastic depth's linear decay rule (Huang et al., 2016, eq. 4): block l of L survives with
    ``1 - l / L * (1 - last)``, so the input (l = 0) is always kept and the last block survives with ``last``."""
    last = application.check_stochastic_depth(last)
    if last is None:
        return [1.0] * num_blocks
    return [1.0 - (index / num_blocks) * (1.0 - last) for index in range(1, num_blocks + 1)]


# General builders: any depth / width the papers describe.

def ResNet(depth: int, layout: str = "torchvision", **kwargs):
    """ImageNet ResNet-``depth`` in one of the three layouts. ``weights="imagenet"`` works for the layouts whose file
    keras.applications publishes.

    Args:
        depth: 18, 34, 50, 101 or 152.
        layout: ``"torchvision"`` (v1.5, torchvision's and timm's checkpoints), ``"keras"`` or ``"keras_v2"``.
        **kwargs: keras.applications' arguments and the model options (see
            :func:`keras_convnets.models.application.build_model`).

    Returns:
        A ``keras.Model``.
    """
    name = f"resnet{depth}" + ("v2" if layout == "keras_v2" else "")
    return build_resnet(architecture=imagenet_resnet(depth, layout), **{"name": name, **kwargs})


def CifarResNet(depth: int, **kwargs):
    """CIFAR ResNet-``depth`` with option-A shortcuts (He et al., 2015).

    Args:
        depth: 6n+2 (20, 32, 44, 56, 110, 1202, ...).
        **kwargs: keras.applications' arguments and the model options (see
            :func:`keras_convnets.models.application.build_model`).

    Returns:
        A ``keras.Model``.
    """
    return build_resnet(architecture=cifar_resnet(depth), **{"name": f"resnet{depth}", **kwargs})


def PreActResNet(depth: int, **kwargs):
    """CIFAR pre-activation bottleneck ResNet-``depth`` (He et al., 2016b).

    Args:
        depth: 9n+2 (164, 1001, ...).
        **kwargs: keras.applications' arguments and the model options (see
            :func:`keras_convnets.models.application.build_model`).

    Returns:
        A ``keras.Model``.
    """
    return build_resnet(architecture=preact_resnet(depth), **{"name": f"preact_resnet{depth}", **kwargs})


def WideResNet(depth: int, width: int, dropout: float = 0.0, **kwargs):
    """CIFAR WRN-``depth``-``width`` (Zagoruyko & Komodakis, 2016).

    Args:
        depth: 6n+4 (16, 28, 40, ...).
        width: the widening factor k.
        dropout: between the convs of a block (0.3 in the paper's best runs).
        **kwargs: keras.applications' arguments and the model options (see
            :func:`keras_convnets.models.application.build_model`).

    Returns:
        A ``keras.Model``.
    """
    return build_resnet(architecture=wide_resnet(depth, width), dropout=dropout,
                        **{"name": f"wrn_{depth}_{width}", **kwargs})


def ResNeXt(depth: int, cardinality: int, group_width: int, **kwargs):
    """CIFAR ResNeXt-``depth`` (Xie et al., 2017).

    Args:
        depth: 9n+2 (29, ...).
        cardinality: the number of groups C.
        group_width: the channels d of a group at the first stage (doubled per stage).
        **kwargs: keras.applications' arguments and the model options (see
            :func:`keras_convnets.models.application.build_model`).

    Returns:
        A ``keras.Model``.
    """
    return build_resnet(architecture=cifar_resnext(depth, cardinality, group_width),
                        **{"name": f"resnext{depth}_{cardinality}x{group_width}d", **kwargs})


# The named models: one call each defines the factory and registers it (name, recipe family, paper figures --
# "C10+" with standard augmentation, "C10" without -- published weights, recipe hints). Parameters and FLOPs are
# counted by `python -m keras_convnets.models.registry --write` into counts.py.

def _register(factory_name, architecture, doc, **registration):
    return application.register(build_resnet, factory_name, architecture, doc, **registration)


def _imagenet_top1(top1, source):
    return {"figures": {"top-1": top1}, "source": source}


ResNet18 = _register("ResNet18", imagenet_resnet(18), "ResNet-18, torchvision layout", name="resnet18",
                     family="resnet", **_imagenet_top1(69.76, "torchvision"))
ResNet34 = _register("ResNet34", imagenet_resnet(34), "ResNet-34, torchvision layout", name="resnet34",
                     family="resnet", **_imagenet_top1(73.31, "torchvision"))
ResNet50 = _register("ResNet50", imagenet_resnet(50, "keras"), "ResNet-50, keras.applications layout",
                     name="resnet50", family="resnet", weights="resnet50", **_imagenet_top1(74.9, "keras"))
ResNet101 = _register("ResNet101", imagenet_resnet(101, "keras"), "ResNet-101, keras.applications layout",
                      name="resnet101", family="resnet", weights="resnet101", **_imagenet_top1(76.4, "keras"))
ResNet152 = _register("ResNet152", imagenet_resnet(152, "keras"), "ResNet-152, keras.applications layout",
                      name="resnet152", family="resnet", weights="resnet152", **_imagenet_top1(76.6, "keras"))
ResNet50V2 = _register("ResNet50V2", imagenet_resnet(50, "keras_v2"),
                       "Pre-activation ResNet-50, keras.applications' ResNet50V2", name="resnet50v2",
                       family="preact_resnet", weights="resnet50v2", **_imagenet_top1(76.0, "keras"))
ResNet101V2 = _register("ResNet101V2", imagenet_resnet(101, "keras_v2"),
                        "Pre-activation ResNet-101, keras.applications' ResNet101V2", name="resnet101v2",
                        family="preact_resnet", weights="resnet101v2", **_imagenet_top1(77.2, "keras"))
ResNet152V2 = _register("ResNet152V2", imagenet_resnet(152, "keras_v2"),
                        "Pre-activation ResNet-152, keras.applications' ResNet152V2", name="resnet152v2",
                        family="preact_resnet", weights="resnet152v2", **_imagenet_top1(78.0, "keras"))
ResNeXt50_32x4d = _register("ResNeXt50_32x4d", imagenet_resnet(50, groups=32, base_width=4),
                            "ResNeXt-50 32x4d, torchvision layout", name="resnext50_32x4d", family="resnext",
                            **_imagenet_top1(77.62, "torchvision"))
ResNeXt101_32x8d = _register("ResNeXt101_32x8d", imagenet_resnet(101, groups=32, base_width=8),
                             "ResNeXt-101 32x8d, torchvision layout", name="resnext101_32x8d", family="resnext",
                             **_imagenet_top1(79.31, "torchvision"))
WideResNet50_2 = _register("WideResNet50_2", imagenet_resnet(50, base_width=128),
                           "Wide ResNet-50-2 (bottleneck twice as wide), torchvision layout", name="wide_resnet50_2",
                           family="wrn", **_imagenet_top1(78.47, "torchvision"))

ResNet20 = _register("ResNet20", cifar_resnet(20), "CIFAR ResNet-20", name="resnet20", family="resnet",
                     figures={"C10+": 8.75})
ResNet32 = _register("ResNet32", cifar_resnet(32), "CIFAR ResNet-32", name="resnet32", family="resnet",
                     figures={"C10+": 7.51})
ResNet44 = _register("ResNet44", cifar_resnet(44), "CIFAR ResNet-44", name="resnet44", family="resnet",
                     figures={"C10+": 7.17})
ResNet56 = _register("ResNet56", cifar_resnet(56), "CIFAR ResNet-56", name="resnet56", family="resnet",
                     figures={"C10+": 6.97})
ResNet110 = _register("ResNet110", cifar_resnet(110), "CIFAR ResNet-110", name="resnet110", family="resnet",
                      figures={"C10+": 6.43}, note="5.23% with stochastic depth", warmup=True)
ResNet1202 = _register("ResNet1202", cifar_resnet(1202), "CIFAR ResNet-1202", name="resnet1202", family="resnet",
                       figures={"C10+": 7.93}, warmup=True)
PreActResNet164 = _register("PreActResNet164", preact_resnet(164), "Pre-activation ResNet-164",
                            name="preact_resnet164", family="preact_resnet", figures={"C10+": 5.46, "C100+": 24.33})
PreActResNet1001 = _register("PreActResNet1001", preact_resnet(1001), "Pre-activation ResNet-1001",
                             name="preact_resnet1001", family="preact_resnet", figures={"C10+": 4.92})
WRN16_4 = _register("WRN16_4", wide_resnet(16, 4), "WRN-16-4", name="wrn_16_4", family="wrn", figures={"C10+": 5.02})
WRN16_8 = _register("WRN16_8", wide_resnet(16, 8), "WRN-16-8", name="wrn_16_8", family="wrn", figures={"C10+": 4.27})
WRN28_10 = _register("WRN28_10", wide_resnet(28, 10), "WRN-28-10", name="wrn_28_10", family="wrn",
                     figures={"C10+": 4.00}, note="3.89% with dropout 0.3")
WRN40_4 = _register("WRN40_4", wide_resnet(40, 4), "WRN-40-4", name="wrn_40_4", family="wrn", figures={"C10+": 4.53})
ResNeXt29_8x64d = _register("ResNeXt29_8x64d", cifar_resnext(29, 8, 64), "CIFAR ResNeXt-29 8x64d",
                            name="resnext29_8x64d", family="resnext", figures={"C10+": 3.65})
ResNeXt29_16x64d = _register("ResNeXt29_16x64d", cifar_resnext(29, 16, 64), "CIFAR ResNeXt-29 16x64d",
                             name="resnext29_16x64d", family="resnext", figures={"C10+": 3.58})

# torchvision's / timm's names of the architectures their checkpoints fit (weights="torchvision" / "timm[:tag]").
torch_weights.register_architectures({
    **{f"resnet{depth}": imagenet_resnet(depth) for depth in (18, 34, 50, 101, 152)},
    "resnext50_32x4d": imagenet_resnet(50, groups=32, base_width=4),
    "resnext101_32x8d": imagenet_resnet(101, groups=32, base_width=8),
    "wide_resnet50_2": imagenet_resnet(50, base_width=128)})

__all__ = ["build_resnet", "ResNet", "CifarResNet", "PreActResNet", "WideResNet", "ResNeXt",
           "ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2",
           "ResNeXt50_32x4d", "ResNeXt101_32x8d", "WideResNet50_2", "ResNet20", "ResNet32", "ResNet44", "ResNet56",
           "ResNet110", "ResNet1202", "PreActResNet164", "PreActResNet1001", "WRN16_4", "WRN16_8", "WRN28_10",
           "WRN40_4", "ResNeXt29_8x64d", "ResNeXt29_16x64d"]
