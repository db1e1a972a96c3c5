"""DenseNet and DenseNet-BC (Huang et al., 2017), ImageNet and CIFAR: spec tables and one builder.

* ImageNet: 7x7/2 stem of ``2k`` filters, 3x3/2 max-pool, four dense blocks of bottleneck layers (``k`` = 32, or 48
  for DenseNet-161), transitions with compression 0.5. Layer names and constants are keras.applications', so its
  DenseNet-121/169/201 weights load.
* CIFAR: 3x3 stem, three dense blocks of equal size, transitions between them. Plain DenseNet (no bottleneck,
  compression 1) has (depth - 4) / 3 layers per block and a 16-filter stem; DenseNet-BC (bottleneck, compression
  0.5) has (depth - 4) / 6 and a ``2k`` stem, as in the paper.
"""

import dataclasses
from typing import Tuple

from keras_convnets.models import application, blocks
from keras_convnets.models.config import KERAS_APPLICATIONS, TORCH, LayerConfig


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One DenseNet: layers per dense block, growth rate ``k``, stem, bottleneck layers and compression."""

    block_sizes: Tuple[int, ...]
    growth_rate: int
    stem: str                      # "imagenet" or "cifar"
    stem_width: int
    config: LayerConfig
    bottleneck: bool = True
    compression: float = 0.5
    default_size: int = 224
    default_classes: int = 1000

    @property
    def min_size(self) -> int:
        return (4 if self.stem == "imagenet" else 1) * 2 ** (len(self.block_sizes) - 1)


#: ImageNet depth -> (growth rate, layers per dense block), Huang et al. (2017), Table 1; 161 is k=48.
IMAGENET_DEPTHS = {121: (32, (6, 12, 24, 16)), 169: (32, (6, 12, 32, 32)), 201: (32, (6, 12, 48, 32)),
                   264: (32, (6, 12, 64, 48)), 161: (48, (6, 12, 36, 24))}


def imagenet_densenet(depth) -> Architecture:
    if depth not in IMAGENET_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(IMAGENET_DEPTHS)} for an ImageNet DenseNet; got {depth!r}")
    k, sizes = IMAGENET_DEPTHS[depth]
    return Architecture(sizes, k, "imagenet", 2 * k, KERAS_APPLICATIONS)


def cifar_densenet(depth, growth_rate=12, bottleneck=True, compression=0.5) -> Architecture:
    """CIFAR DenseNet of ``depth`` (3n+4, or 6n+4 with bottleneck layers)."""
    application.check_positive_int("growth_rate", growth_rate)
    if isinstance(compression, bool) or not isinstance(compression, (int, float)) or not 0.0 < compression <= 1.0:
        raise ValueError(f"compression must be a number in (0, 1]; got {compression!r}")
    per_layer = 6 if bottleneck else 3
    family = "DenseNet-BC / DenseNet-B (bottleneck=True)" if bottleneck else "DenseNet (bottleneck=False)"
    if isinstance(depth, bool) or not isinstance(depth, int) or depth <= 4 or (depth - 4) % per_layer:
        raise ValueError(f"depth for {family} must be {per_layer}n+4 with n >= 1 (e.g. {per_layer + 4}, "
                         f"{4 * per_layer + 4}, {16 * per_layer + 4}); got {depth!r}")
    n = (depth - 4) // per_layer
    stem_width = 2 * growth_rate if bottleneck and compression < 1 else 16
    return Architecture((n, n, n), growth_rate, "cifar", stem_width, TORCH, bottleneck, float(compression),
                        default_size=32, default_classes=10)


def _body(x, arch, config, dropout, memory_efficient=False):
    if arch.stem == "imagenet":
        x = config.pad(3, name="conv1_pad")(x)
        x = config.conv(arch.stem_width, 7, 2, "valid", name="conv1_conv")(x)
        x = config.bn(name="conv1_bn")(x)
        x = config.relu(name="conv1_relu")(x)
        x = config.pad(1, name="pool1_pad")(x)
        x = config.max_pool(3, 2, name="pool1")(x)
    else:
        x = config.conv(arch.stem_width, 3, name="conv1_conv")(x)
    last = len(arch.block_sizes) - 1
    for i, n in enumerate(arch.block_sizes):
        x = blocks.dense_block(x, n, arch.growth_rate, arch.bottleneck, dropout, memory_efficient=memory_efficient,
                               config=config, name=f"conv{i + 2}")
        if i < last:
            x = blocks.transition(x, arch.compression, dropout, config=config, name=f"pool{i + 2}")
    x = config.bn(name="bn")(x)
    return config.relu(name="relu")(x)


def build_densenet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=None,
                   classifier_activation="softmax", name="densenet", *, architecture, weights_name=None,
                   dropout=0.0, data_format="channels_last", dtype=None, weight_decay=0.0, sync_bn=False,
                   memory_efficient=False):
    """Builds ``architecture`` with the keras.applications arguments and these options:

    dropout: after every conv of the dense layers and transitions (0.2 in the paper, without augmentation).
    data_format, dtype, weight_decay, sync_bn: as in :func:`keras_convnets.models.resnet.build_resnet`.
    memory_efficient: recompute each dense layer's concat-BN-ReLU-conv in the backward pass instead of storing it
        (Pleiss et al., 2017; torchvision's ``memory_efficient``): activation memory linear instead of quadratic in
        a block's depth, for some extra compute. Same function and weights as the plain model (``set_weights``
        moves them either way) and the same exported SavedModel; see :mod:`keras_convnets.models.recompute`.
    """
    arch = architecture
    application.check_dropout(dropout)
    config = application.layer_config(arch.config, data_format=data_format, dtype=dtype, weight_decay=weight_decay,
                                      sync_bn=sync_bn)
    return application.build(
        lambda x: _body(x, arch, config, dropout, bool(memory_efficient)), name=name, weights_name=weights_name or name,
        include_top=include_top, weights=weights, input_tensor=input_tensor, input_shape=input_shape,
        pooling=pooling, classes=arch.default_classes if classes is None else classes,
        classifier_activation=classifier_activation, default_size=arch.default_size, min_size=arch.min_size,
        config=config)


def DenseNet(depth, **kwargs):
    """ImageNet DenseNet-``depth`` (121, 169, 201, 264; 161 with k=48)."""
    return build_densenet(architecture=imagenet_densenet(depth), **{"name": f"densenet{depth}", **kwargs})


def CifarDenseNet(depth, growth_rate=12, bottleneck=True, compression=0.5, dropout=0.0, **kwargs):
    """CIFAR DenseNet of any depth and growth rate; ``bottleneck=True, compression=0.5`` is DenseNet-BC."""
    bc = "_bc" if bottleneck and compression < 1 else ""
    return build_densenet(architecture=cifar_densenet(depth, growth_rate, bottleneck, compression), dropout=dropout,
                          **{"name": f"densenet{bc}_{depth}_k{growth_rate}", **kwargs})


def _factory(factory_name, model_name, architecture, doc):
    return application.variant(build_densenet, factory_name, doc, architecture=architecture, name=model_name)


DenseNet121 = _factory("DenseNet121", "densenet121", imagenet_densenet(121), "DenseNet-121, keras.applications.")
DenseNet169 = _factory("DenseNet169", "densenet169", imagenet_densenet(169), "DenseNet-169, keras.applications.")
DenseNet201 = _factory("DenseNet201", "densenet201", imagenet_densenet(201), "DenseNet-201, keras.applications.")
DenseNet264 = _factory("DenseNet264", "densenet264", imagenet_densenet(264), "DenseNet-264 (k=32).")
DenseNet161 = _factory("DenseNet161", "densenet161", imagenet_densenet(161), "DenseNet-161 (k=48, 96-filter stem).")

DenseNet40 = _factory("DenseNet40", "densenet40", cifar_densenet(40, 12, bottleneck=False, compression=1.0),
                      "CIFAR DenseNet L=40, k=12 (C10 error 7.00%, C10+ 5.24%).")
DenseNet100 = _factory("DenseNet100", "densenet100", cifar_densenet(100, 12, bottleneck=False, compression=1.0),
                       "CIFAR DenseNet L=100, k=12 (C10 error 5.77%, C10+ 4.10%).")
DenseNetBC100 = _factory("DenseNetBC100", "densenet_bc_100", cifar_densenet(100, 12),
                         "CIFAR DenseNet-BC L=100, k=12 (C10+ error 4.51%, C100+ 22.27%).")
DenseNetBC250 = _factory("DenseNetBC250", "densenet_bc_250", cifar_densenet(250, 24),
                         "CIFAR DenseNet-BC L=250, k=24 (C10+ error 3.62%).")
DenseNetBC190 = _factory("DenseNetBC190", "densenet_bc_190", cifar_densenet(190, 40),
                         "CIFAR DenseNet-BC L=190, k=40 (C10+ error 3.46%).")
