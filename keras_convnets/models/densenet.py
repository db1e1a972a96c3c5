"""DenseNet and DenseNet-BC (Huang et al., 2017), ImageNet and CIFAR: spec tables and one builder.

* ImageNet: 7x7/2 stem of ``2k`` filters, 3x3/2 max-pool, four dense blocks of bottleneck layers (``k`` = 32, or 48
  for DenseNet-161), transitions with compression 0.5. Layer names and constants are keras.applications', so its
  DenseNet-121/169/201 weights load.
* CIFAR: 3x3 stem, three dense blocks of equal size, transitions between them. Plain DenseNet (no bottleneck,
  compression 1) has (depth - 4) / 3 layers per block and a 16-filter stem; DenseNet-BC (bottleneck, compression
  0.5) has (depth - 4) / 6 and a ``2k`` stem, as in the paper.
"""

import dataclasses
import re
from typing import Callable, Optional, Tuple

from keras_convnets import checks
from keras_convnets.models import application, blocks, torch_weights
from keras_convnets.models.config import KERAS_APPLICATIONS, TORCH


@dataclasses.dataclass(frozen=True, kw_only=True)
class Architecture(application.Architecture):
    """One DenseNet: layers per dense block, growth rate ``k``, bottleneck layers and compression.

    Its stem has BN-ReLU on ImageNet only (the CIFAR DenseNets' first BN is the first dense layer's).
    """

    STEM_POOL_NAME = "pool1"
    DEFAULT_NAME = "densenet"

    block_sizes: Tuple[int, ...]
    growth_rate: int
    bottleneck: bool = True
    compression: float = 0.5
    accepts_dropout: bool = True
    accepts_memory_efficient: bool = True

    @property
    def num_stages(self) -> int:
        return len(self.block_sizes)

    @property
    def stem_activated(self) -> bool:
        return self.stem == "imagenet"

    def torch_key_map(self) -> Optional[Callable[[str], Optional[str]]]:
        """:func:`torch_key` for the ImageNet DenseNets (torchvision's and timm's layout); None for the CIFAR ones."""
        return torch_key if self.stem == "imagenet" else None

    def feature_maps(self, x, config, options):
        """The stem's maps, each dense block's output (before its transition: timm's ``features_only`` choice) and
        each transition's, then the final BN-ReLU (``relu``, what the classifier pools). The same tensors with
        ``memory_efficient=True``, whose blocks end in the same concatenation."""
        maps = application.stem_maps(x, self, config)
        total_stride, x = maps[-1]
        dropout = options["dropout"]
        last = len(self.block_sizes) - 1
        for i, n in enumerate(self.block_sizes):
            x = blocks.dense_block(x, n, self.growth_rate, self.bottleneck, dropout,
                                   memory_efficient=bool(options["memory_efficient"]), config=config,
                                   name=f"conv{i + 2}")
            maps.append((total_stride, x))
            if i < last:
                x = blocks.transition(x, self.compression, dropout, config=config, name=f"pool{i + 2}")
                total_stride *= 2
                maps.append((total_stride, x))
        x = config.bn(name="bn")(x)
        return maps + [(total_stride, config.relu(name="relu")(x))]


#: The shared builder of both families, under this family's name.
build_densenet = application.build_model

#: ImageNet depth -> (growth rate, layers per dense block), Huang et al. (2017), Table 1; 161 is k=48.
IMAGENET_DEPTHS = {121: (32, (6, 12, 24, 16)), 169: (32, (6, 12, 32, 32)), 201: (32, (6, 12, 48, 32)),
                   264: (32, (6, 12, 64, 48)), 161: (48, (6, 12, 36, 24))}


def torch_key(layer: str) -> Optional[str]:
    """torchvision's / timm's parameter prefix of one of our ImageNet DenseNet layers (``features.conv0``,
    ``features.denseblock{i}.denselayer{j}.norm1`` ..., ``features.transition{i}.norm`` / ``.conv``,
    ``features.norm5``, ``classifier``), None for a layer they lack."""
    fixed = {"conv1_conv": "features.conv0", "conv1_bn": "features.norm0", "bn": "features.norm5",
             "predictions": "classifier"}
    if layer in fixed:
        return fixed[layer]
    match = re.fullmatch(r"conv(\d)_block(\d+)_(0_bn|1_conv|1_bn|2_conv)", layer)
    if match:
        part = {"0_bn": "norm1", "1_conv": "conv1", "1_bn": "norm2", "2_conv": "conv2"}[match.group(3)]
        return f"features.denseblock{int(match.group(1)) - 1}.denselayer{match.group(2)}.{part}"
    match = re.fullmatch(r"pool(\d)_(bn|conv)", layer)
    if match:
        return f"features.transition{int(match.group(1)) - 1}.{'norm' if match.group(2) == 'bn' else 'conv'}"
    return None


def imagenet_densenet(depth: int) -> Architecture:
    if depth not in IMAGENET_DEPTHS:
        checks.fail("depth", f"one of {sorted(IMAGENET_DEPTHS)} for an ImageNet DenseNet", depth)
    k, sizes = IMAGENET_DEPTHS[depth]
    return Architecture(block_sizes=sizes, growth_rate=k, stem="imagenet", stem_width=2 * k,
                        config=KERAS_APPLICATIONS)


def cifar_densenet(depth: int, growth_rate: int = 12, bottleneck: bool = True,
                   compression: float = 0.5) -> Architecture:
    """CIFAR DenseNet of ``depth`` (3n+4, or 6n+4 with bottleneck layers)."""
    checks.positive_int("growth_rate", growth_rate)
    compression = checks.number_in("compression", compression, 0.0, 1.0, low_open=True)
    per_layer = 6 if bottleneck else 3
    family = "DenseNet-BC / DenseNet-B (bottleneck=True)" if bottleneck else "DenseNet (bottleneck=False)"
    if isinstance(depth, bool) or not isinstance(depth, int) or depth <= 4 or (depth - 4) % per_layer:
        checks.fail(f"depth for {family}", f"{per_layer}n+4 with n >= 1 (e.g. {per_layer + 4}, "
                    f"{4 * per_layer + 4}, {16 * per_layer + 4})", depth)
    n = (depth - 4) // per_layer
    stem_width = 2 * growth_rate if bottleneck and compression < 1 else 16
    return Architecture(block_sizes=(n, n, n), growth_rate=growth_rate, stem="cifar", stem_width=stem_width,
                        config=TORCH, bottleneck=bool(bottleneck), compression=compression)


def DenseNet(depth: int, **kwargs):
    """ImageNet DenseNet-``depth`` (Huang et al., 2017).

    Args:
        depth: 121, 169, 201, 264, or 161 (k=48).
        **kwargs: keras.applications' arguments and the model options (see
            :func:`keras_convnets.models.application.build_model`).

    Returns:
        A ``keras.Model``.
    """
    return build_densenet(architecture=imagenet_densenet(depth), **{"name": f"densenet{depth}", **kwargs})


def CifarDenseNet(depth: int, growth_rate: int = 12, bottleneck: bool = True, compression: float = 0.5,
                  dropout: float = 0.0, **kwargs):
    """CIFAR DenseNet of any depth and growth rate; ``bottleneck=True, compression=0.5`` is DenseNet-BC.

    Args:
        depth: 3n+4, or 6n+4 with bottlenecks.
        growth_rate: k.
        bottleneck: 1x1 convs to 4k before each 3x3 (DenseNet-B).
        compression: the transitions' channel factor theta (DenseNet-C below 1).
        dropout: after every conv of the dense layers and transitions (0.2 in the paper without augmentation).
        **kwargs: keras.applications' arguments and the model options (see
            :func:`keras_convnets.models.application.build_model`).

    Returns:
        A ``keras.Model``.
    """
    bc = "_bc" if bottleneck and compression < 1 else ""
    return build_densenet(architecture=cifar_densenet(depth, growth_rate, bottleneck, compression), dropout=dropout,
                          **{"name": f"densenet{bc}_{depth}_k{growth_rate}", **kwargs})


# The named models: one call each defines the factory and registers it (see resnet.py's note).

def _register(factory_name, architecture, doc, **registration):
    return application.register(build_densenet, factory_name, architecture, doc, family="densenet", **registration)


DenseNet121 = _register("DenseNet121", imagenet_densenet(121), "DenseNet-121, keras.applications", name="densenet121",
                        weights="densenet121", figures={"top-1": 75.0}, source="keras")
DenseNet169 = _register("DenseNet169", imagenet_densenet(169), "DenseNet-169, keras.applications", name="densenet169",
                        weights="densenet169", figures={"top-1": 76.2}, source="keras")
DenseNet201 = _register("DenseNet201", imagenet_densenet(201), "DenseNet-201, keras.applications", name="densenet201",
                        weights="densenet201", figures={"top-1": 77.3}, source="keras")
DenseNet264 = _register("DenseNet264", imagenet_densenet(264), "DenseNet-264 (k=32)", name="densenet264",
                        figures={"top-1": 77.85}, source="paper: 22.15% error")
DenseNet161 = _register("DenseNet161", imagenet_densenet(161), "DenseNet-161 (k=48, 96-filter stem)",
                        name="densenet161", figures={"top-1": 77.14}, source="torchvision")

DenseNet40 = _register("DenseNet40", cifar_densenet(40, 12, bottleneck=False, compression=1.0),
                       "CIFAR DenseNet L=40, k=12", name="densenet40", figures={"C10+": 5.24, "C10": 7.00})
DenseNet100 = _register("DenseNet100", cifar_densenet(100, 12, bottleneck=False, compression=1.0),
                        "CIFAR DenseNet L=100, k=12", name="densenet100", figures={"C10+": 4.10, "C10": 5.77})
DenseNetBC100 = _register("DenseNetBC100", cifar_densenet(100, 12), "CIFAR DenseNet-BC L=100, k=12",
                          name="densenet_bc_100", figures={"C10+": 4.51, "C100+": 22.27})
DenseNetBC250 = _register("DenseNetBC250", cifar_densenet(250, 24), "CIFAR DenseNet-BC L=250, k=24",
                          name="densenet_bc_250", figures={"C10+": 3.62})
DenseNetBC190 = _register("DenseNetBC190", cifar_densenet(190, 40), "CIFAR DenseNet-BC L=190, k=40",
                          name="densenet_bc_190", figures={"C10+": 3.46})

# torchvision's / timm's names of the architectures their checkpoints fit (weights="torchvision" / "timm[:tag]").
torch_weights.register_architectures({f"densenet{depth}": imagenet_densenet(depth) for depth in (121, 161, 169, 201)})

__all__ = ["build_densenet", "DenseNet", "CifarDenseNet", "DenseNet121", "DenseNet169", "DenseNet201", "DenseNet264",
           "DenseNet161", "DenseNet40", "DenseNet100", "DenseNetBC100", "DenseNetBC250", "DenseNetBC190"]
