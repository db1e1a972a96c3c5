"""The builder core both families share: the architecture base, the stem, the keras.applications contract (argument
checks, input, head, weights), the model options, and the registration of named models.

Every factory takes ``include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation,
name``. Unlike keras.applications, ``weights`` defaults to ``None`` (most of our models have no published weights
and nothing should download behind a user's back), and contradictory arguments raise instead of being ignored.

A family module (:mod:`~keras_convnets.models.resnet`, :mod:`~keras_convnets.models.densenet`) subclasses
:class:`Architecture` with its own fields and ``feature_maps``; :func:`build_model` does everything else. A named
model is defined in one call, :func:`register`, next to its family's other factories: the factory, its registry name,
family, paper figure, published weights and recipe hints. Parameters and FLOPs are not typed anywhere: they are
counted from the built models into :mod:`keras_convnets.models.counts` by
``python -m keras_convnets.models.registry --write``.
"""

import contextlib
import dataclasses
import math
import sys
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Tuple

from keras_convnets import checks
from keras_convnets.models import torch_weights
from keras_convnets.models import weights as weights_lib
from keras_convnets.models.backend import keras, require_tensorflow
from keras_convnets.models.config import LayerConfig

POOLINGS = (None, "avg", "max")
STEMS = ("imagenet", "cifar")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Architecture:
    """What every architecture has; a family subclasses it with its stages and implements :meth:`feature_maps`.

    ``stem``: ``"imagenet"`` (7x7/2 conv of ``stem_width``, 3x3/2 max-pool; 224x224 inputs, 1000 classes) or
    ``"cifar"`` (3x3 conv; 32x32, 10 classes). ``preact``: pre-activation network (no BN-ReLU after the stem conv).
    ``accepts_*``: which model options of :func:`build_model` its blocks take (see :data:`MODEL_OPTIONS`).
    """

    #: The layer name of the stem's max-pool (keras.applications: ``pool1_pool`` in ResNets, ``pool1`` in DenseNets).
    STEM_POOL_NAME: ClassVar[str] = "pool1_pool"
    #: The model name :func:`build_model` uses when none is given.
    DEFAULT_NAME: ClassVar[str] = "model"

    stem: str
    stem_width: int
    config: LayerConfig
    preact: bool = False
    accepts_dropout: bool = False
    accepts_stochastic_depth: bool = False
    accepts_zero_init_residual: bool = False
    accepts_memory_efficient: bool = False

    def __post_init__(self):
        checks.one_of("stem", self.stem, STEMS)

    @property
    def num_stages(self) -> int:
        raise NotImplementedError

    @property
    def stem_activated(self) -> bool:
        """BN-ReLU after the stem conv: every post-activation network has it, pre-activation ones do not."""
        return not self.preact

    @property
    def dataset(self) -> str:
        """The input it is designed for: ``"imagenet"`` or ``"cifar"``."""
        return self.stem

    @property
    def default_size(self) -> int:
        return 224 if self.stem == "imagenet" else 32

    @property
    def default_classes(self) -> int:
        return 1000 if self.stem == "imagenet" else 10

    @property
    def min_size(self) -> int:
        """The total stride: inputs smaller than this would be pooled away."""
        return (4 if self.stem == "imagenet" else 1) * 2 ** (self.num_stages - 1)

    def feature_maps(self, x, config: LayerConfig, options: Mapping[str, Any]) -> List[Tuple[int, Any]]:
        """The network from the image to the last feature map (stem included), under the checked ``options``, as
        ``(stride, tensor)`` pairs in depth order: every tensor a pyramid level may take (the stem's, each block's or
        dense block's output, ...), the last being the activation the classifier pools. :func:`pyramid` keeps the
        deepest one of each stride."""
        raise NotImplementedError

    def torch_key_map(self) -> Optional[Callable[[str], Optional[str]]]:
        """The map from this network's layer names to torchvision's / timm's parameter prefixes (the family's
        ``torch_key``), through which their checkpoints load; None when they publish no counterpart (the default). A
        family may raise a ValueError saying which of its layouts to build instead."""
        return None


def stem_maps(x, arch: Architecture, config: LayerConfig) -> List[Tuple[int, Any]]:
    """The one stem of both families: ImageNet's zero-pad 3, 7x7/2 conv, [BN-ReLU], zero-pad 1, 3x3/2 max-pool, or
    CIFAR's 3x3 conv [BN-ReLU]. Layer names are keras.applications' (``conv1_pad``, ``conv1_conv``, ``conv1_bn``,
    ``conv1_relu``, ``pool1_pad``, then ``arch.STEM_POOL_NAME``).

    Returns ``(stride, tensor)`` pairs (see :meth:`Architecture.feature_maps`): the conv's output after its BN-ReLU
    (the raw conv output in a pre-activation network, whose first BN is the first block's), then on ImageNet the
    max-pool's output at stride 4."""
    if arch.stem == "imagenet":
        x = config.pad(3, name="conv1_pad")(x)
        x = config.conv(arch.stem_width, 7, 2, "valid", name="conv1_conv")(x)
    else:
        x = config.conv(arch.stem_width, 3, name="conv1_conv")(x)
    if arch.stem_activated:
        x = config.bn(name="conv1_bn")(x)
        x = config.relu(name="conv1_relu")(x)
    if arch.stem != "imagenet":
        return [(1, x)]
    maps = [(2, x)]
    x = config.pad(1, name="pool1_pad")(x)
    return maps + [(4, config.max_pool(3, 2, name=arch.STEM_POOL_NAME)(x))]


# Backbones for dense tasks: the feature pyramid.

def level_name(stride: int) -> str:
    """A pyramid level's name, ``P{log2(stride)}`` (FPN's and KerasHub's ``pyramid_outputs``' convention): ``P2`` is
    the feature map at stride 4, ``P5`` at stride 32; a CIFAR network's stages at strides 1, 2, 4 are P0, P1, P2."""
    return f"P{int(math.log2(stride))}"


def pyramid(maps: List[Tuple[int, Any]]) -> Dict[str, Any]:
    """The pyramid levels of :meth:`Architecture.feature_maps`' pairs: one per stride, the deepest tensor at that
    stride, named by :func:`level_name`, shallowest first.

    "Deepest at its stride" is one rule for every layout: the end of each stage where stages downsample in their
    first block; the block before the strided one in keras.applications' ResNetV2 (stride on a stage's last block);
    the dense block before its transition in DenseNets; the stem conv on ImageNet (stride 2) but not on CIFAR, where
    the first stage works at the stem's stride 1 and its output is P0."""
    deepest = {}
    for stride, tensor in maps:
        deepest[stride] = tensor
    return {level_name(stride): tensor for stride, tensor in sorted(deepest.items())}


def select_levels(levels: Mapping[str, Any], out_indices: Any) -> Dict[str, Any]:
    """The levels ``out_indices`` picks, in level order: None for all, else a non-empty list or tuple whose items are
    indices into the level list (0 is the shallowest, as timm's ``out_indices``) or level names (``"P3"``)."""
    names = list(levels)
    if out_indices is None:
        return dict(levels)
    accepted = (f"None or a non-empty list of level indices 0-{len(names) - 1} or names "
                f"{', '.join(repr(n) for n in names)} (this model's levels), each at most once")
    if not isinstance(out_indices, (list, tuple)) or not out_indices:
        checks.fail("out_indices", accepted, out_indices)
    chosen = []
    for item in out_indices:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(names):
            item = names[item]
        if not isinstance(item, str) or item not in levels or item in chosen:
            checks.fail("out_indices", accepted, out_indices)
        chosen.append(item)
    return {name: tensor for name, tensor in levels.items() if name in chosen}


def check_features_head(features: Any, out_indices: Any, pooling: Optional[str], classes: Optional[int],
                        classifier_activation: Any) -> None:
    """``features=True`` builds no head: ``pooling``, ``classes`` and ``classifier_activation`` would describe one
    and are errors with it (``include_top``, True by default in keras.applications' signature, is ignored, as timm's
    ``features_only`` ignores the classifier); ``out_indices`` needs ``features=True``."""
    checks.one_of("features", features, (False, True))
    if not features:
        if out_indices is not None:
            raise ValueError(f"out_indices={out_indices!r} applies only with features=True (a feature-pyramid "
                             "backbone)")
        return
    head_arguments = {"pooling": (pooling, None), "classes": (classes, None),
                      "classifier_activation": (classifier_activation, "softmax")}
    for argument, (value, default) in head_arguments.items():
        if value != default:
            raise ValueError(f"{argument}={value!r} describes a classifier head, which features=True does not build "
                             "(it returns the pyramid levels); leave it out, or build the classifier with "
                             "features=False")


def feature_model(model, inputs: Any, levels: Mapping[str, Any], out_indices: Any, name: str):
    """The backbone ``model`` (headless, weights loaded, built from ``inputs``) cut at the chosen levels: a Keras
    model whose output is the dict ``{"P2": tensor, ...}``. Layers are shared, so the weights are the loaded
    model's."""
    chosen = select_levels(levels, out_indices)
    with _deep_graph_recursion():
        features = keras.Model(inputs, chosen, name=name)
    preprocessing = torch_weights.preprocessing_of(model)
    if preprocessing is not None:
        setattr(features, torch_weights.PREPROCESSING_ATTRIBUTE, preprocessing)
    return features


def check_stochastic_depth(value: Optional[float]) -> Optional[float]:
    """Stochastic depth's p_L: None (off) or a number in (0, 1]."""
    if value is None:
        return None
    return checks.number_in("stochastic_depth (the last block's survival probability p_L)", value, 0.0, 1.0,
                            low_open=True)


def _check_dropout(value):
    checks.number_in("dropout", value, 0.0, 1.0, high_open=True)


def _check_flag(option):
    return lambda value: checks.one_of(option, value, (False, True))


@dataclasses.dataclass(frozen=True)
class ModelOption:
    """An option of :func:`build_model` that only some architectures take."""

    default: Any
    field: str          # the Architecture field that says whether it is taken
    taken_by: str       # who takes it, for the error message
    check: Callable[[Any], None]


#: The options some architectures take; passing one to another architecture is a ValueError that names who takes it.
MODEL_OPTIONS: Dict[str, ModelOption] = {
    "stochastic_depth": ModelOption(None, "accepts_stochastic_depth",
                                    "the residual families (resnet, preact_resnet, wrn, resnext)",
                                    check_stochastic_depth),
    "dropout": ModelOption(0.0, "accepts_dropout", "the CIFAR Wide ResNets (wrn) and the DenseNets (densenet)",
                           _check_dropout),
    "memory_efficient": ModelOption(False, "accepts_memory_efficient", "the DenseNets (densenet)",
                                    _check_flag("memory_efficient")),
    "zero_init_residual": ModelOption(False, "accepts_zero_init_residual",
                                      "the residual families (resnet, preact_resnet, wrn, resnext)",
                                      _check_flag("zero_init_residual")),
}


def check_options(arch: Architecture, name: str, options: Mapping[str, Any]) -> Dict[str, Any]:
    """``options`` checked against what ``arch`` takes, every option of :data:`MODEL_OPTIONS` filled in."""
    resolved = {}
    for option, spec in MODEL_OPTIONS.items():
        value = options.get(option, spec.default)
        spec.check(value)
        if value != spec.default and not getattr(arch, spec.field):
            raise ValueError(f"{option} is not an option of {name}: only {spec.taken_by} take it")
        resolved[option] = value
    return resolved


def layer_config(base: LayerConfig, *, data_format: str = "channels_last", dtype: Any = None,
                 weight_decay: float = 0.0, sync_bn: bool = False, zero_init_residual: bool = False) -> LayerConfig:
    """``base`` (an architecture's LayerConfig) with the per-model options every factory takes, checked."""
    checks.one_of("data_format", data_format, ("channels_last", "channels_first"))
    weight_decay = checks.number_in("weight_decay", weight_decay, 0.0)
    if sync_bn:
        require_tensorflow("sync_bn=True", "Keras synchronises batch-norm statistics across replicas only under a "
                           "tf.distribute strategy")
    return dataclasses.replace(base, data_format=data_format, dtype=dtype, weight_decay=weight_decay,
                               sync_bn=bool(sync_bn), zero_init_residual=zero_init_residual)


def check_head(include_top: bool, weights: Any, pooling: Optional[str], classes: int,
               weights_name: Optional[str], model_name: str = "this model", architecture: Any = None) -> None:
    """Checks the head arguments against each other; each error names the argument and what it accepts."""
    checks.one_of("pooling", pooling, POOLINGS)
    if include_top and pooling is not None:
        raise ValueError(f"pooling={pooling!r} applies only with include_top=False "
                         "(with include_top=True the model always ends in global average pooling)")
    checks.positive_int("classes", classes)
    weights_lib.check_argument(weights, weights_name, model_name, architecture)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"classes must be 1000 with weights='imagenet' and include_top=True; got classes={classes}. "
                         "Use include_top=False to put your own classifier on the pretrained backbone.")


def check_input_shape(input_shape, *, min_size: int, config: LayerConfig, require_rgb: bool) -> None:
    """Checks a (H, W, C) shape (or (C, H, W) under channels_first); ``None`` sizes are allowed."""
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must have 3 entries (height, width, channels); got {input_shape!r}")
    height, width = input_shape[:2] if config.data_format == "channels_last" else input_shape[1:]
    channels = input_shape[-1] if config.data_format == "channels_last" else input_shape[0]
    if channels is None:
        raise ValueError(f"input_shape must give the channel count; got {input_shape!r}")
    checks.positive_int("the input's channel count", channels)
    if require_rgb and channels != 3:
        raise ValueError(f"weights='imagenet' needs 3 input channels (RGB); got input_shape={tuple(input_shape)}")
    for size in (height, width):
        if size is not None and size < min_size:
            raise ValueError(f"input_shape {tuple(input_shape)} is smaller than this model can downsample: height "
                             f"and width must be at least {min_size}")


def _is_keras_tensor(value):
    try:
        return keras.backend.is_keras_tensor(value)
    except ValueError:  # tf-keras raises on non-tensors instead of answering False
        return False


def resolve_input(input_tensor: Any, input_shape: Optional[tuple], *, default_size: int, min_size: int,
                  config: LayerConfig, require_rgb: bool) -> tuple:
    """Returns ``(model_inputs, image_tensor)`` from the keras.applications ``input_tensor`` / ``input_shape``."""
    if input_tensor is not None:
        if not _is_keras_tensor(input_tensor):
            raise ValueError("input_tensor must be a Keras tensor (from keras.Input or a layer's output); "
                             f"got {type(input_tensor).__name__}")
        if input_shape is not None and tuple(input_shape) != tuple(input_tensor.shape[1:]):
            raise ValueError(f"input_shape {tuple(input_shape)} contradicts input_tensor's shape "
                             f"{tuple(input_tensor.shape[1:])}; pass one of them")
        check_input_shape(tuple(input_tensor.shape[1:]), min_size=min_size, config=config, require_rgb=require_rgb)
        return keras.utils.get_source_inputs(input_tensor), input_tensor
    if input_shape is None:
        input_shape = (default_size, default_size, 3) if config.data_format == "channels_last" \
            else (3, default_size, default_size)
    input_shape = tuple(input_shape)
    check_input_shape(input_shape, min_size=min_size, config=config, require_rgb=require_rgb)
    image = keras.Input(shape=input_shape, name="image")
    return image, image


def head(x, *, include_top: bool, pooling: Optional[str], classes: int, classifier_activation: Any,
         config: LayerConfig):
    """keras.applications' top: ``avg_pool`` + ``predictions`` Dense, or the optional feature pooling.

    The classifier runs in float32 under a mixed-precision policy, so its softmax is numerically safe, and in the
    model's own dtype where that is wider (a float64 model stays float64 end to end).
    """
    if include_top:
        x = config.global_pool("avg", name="avg_pool")(x)
        return config.dense(classes, classifier_activation, name="predictions", dtype=_classifier_dtype(config))(x)
    if pooling is not None:
        return config.global_pool(pooling, name=f"{pooling}_pool")(x)
    return x


def _classifier_dtype(config: LayerConfig) -> str:
    """``"float32"`` when the model computes in 16 bits (a mixed policy, given or global), else its own dtype."""
    if config.dtype is None:
        policy = keras.mixed_precision.global_policy()
    elif hasattr(config.dtype, "compute_dtype"):
        policy = config.dtype
    else:
        policy = keras.mixed_precision.Policy(config.dtype)
    return "float32" if policy.compute_dtype in ("float16", "bfloat16") else policy.name


@contextlib.contextmanager
def _deep_graph_recursion(limit=30_000):
    """Keras 3 and tf-keras both map a functional graph recursively, a few frames per layer: ResNet-1202's ~4,000
    layers sit at Python's default limit of 1,000 (whether it overflows depends on the caller's stack depth), so the
    limit is raised while a model is assembled, and restored after."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


# 15 arguments: keras.applications' eight-argument factory signature plus our seven model options, which every factory
# forwards; the one exception to ruff's max-args (pyproject.toml).
def build_model(include_top: bool = True, weights: Any = None, input_tensor: Any = None,  # noqa: PLR0913
                input_shape: Optional[tuple] = None, pooling: Optional[str] = None, classes: Optional[int] = None,
                classifier_activation: Any = "softmax", name: Optional[str] = None, *, architecture: Architecture,
                data_format: str = "channels_last", dtype: Any = None, weight_decay: float = 0.0,
                sync_bn: bool = False, features: bool = False, out_indices: Any = None, **options: Any):
    """Builds ``architecture`` with keras.applications' eight arguments and the model options.

    Args:
        include_top: end in keras.applications' classifier (``avg_pool`` and the ``predictions`` Dense).
        weights: None (random initialisation), ``"imagenet"`` (keras.applications' file of the registered model with
            this architecture, whatever ``name`` is), ``"torchvision"`` / ``"timm[:tag]"``, or the path to a Keras
            weights file (``.weights.h5``, legacy ``.h5``) or a PyTorch checkpoint (``.pth``, ``.safetensors``).
        input_tensor: a Keras tensor to build on instead of a new ``keras.Input``.
        input_shape: ``(height, width, channels)`` (channels first under ``data_format="channels_first"``); default
            the architecture's (224 or 32 square, RGB). Height and width may be None.
        pooling: with ``include_top=False``: None (the last feature map), ``"avg"`` or ``"max"``.
        classes: the classifier's size; default 1000 on ImageNet, 10 on CIFAR.
        classifier_activation: the classifier's activation; None for logits.
        name: the model's name; default the architecture's.
        architecture: what to build (a family's ``Architecture``).
        data_format, dtype: resolved once here and passed to every layer (dtype: a Keras dtype policy name such as
            ``"mixed_float16"``; None uses the global policy).
        weight_decay: the paper's coupled L2 coefficient (PyTorch convention), on conv and dense kernels.
        sync_bn: synchronise batch-norm statistics across replicas under a tf.distribute strategy (TensorFlow only:
            a ValueError names the backend elsewhere).
        features: return a backbone for dense tasks instead: a model whose output is the dict of its pyramid levels
            ``{"P1": ..., "P2": ..., ...}`` (see :func:`pyramid` for which tensor each level is, and
            :func:`keras_convnets.get_backbone`). It is the ``include_top=False`` model, weights loaded as there (the
            ``*_notop`` file for ``"imagenet"``; a torchvision / timm checkpoint's classifier skipped), cut at its
            levels.
        out_indices: with ``features=True``, the levels to return, as indices into the level list or level names.
        **options: the model options some architectures take (:data:`MODEL_OPTIONS`; another architecture's is a
            ValueError naming who takes it):

            * ``stochastic_depth`` (residual networks): the last block's survival probability p_L (0.5 in the
              paper), or None.
            * ``dropout`` (CIFAR Wide ResNets: between the convs of a block, 0.3 in the paper; DenseNets: after every
              conv of the dense layers and transitions, 0.2 in the paper without augmentation).
            * ``zero_init_residual`` (residual networks): start every residual branch at zero (its last BN's gamma
              in v1 blocks, its last conv in pre-activation blocks), so each block starts as the identity (Goyal et
              al., 2017). Off by default, as in the papers; it makes very deep untrained networks (ResNet-1202)
              well-scaled from the start.
            * ``memory_efficient`` (DenseNets): recompute each dense layer's concat-BN-ReLU-conv in the backward pass
              instead of storing it (Pleiss et al., 2017; torchvision's ``memory_efficient``), on every backend: same
              function and weights as the plain model; see :mod:`keras_convnets.models.recompute`.

    Returns:
        A ``keras.Model`` (its architecture recorded on it for :func:`keras_convnets.load_checkpoint`); with
        ``features=True``, one whose output is the dict of the chosen pyramid levels.
    """
    arch = architecture
    name = arch.DEFAULT_NAME if name is None else name
    unknown = sorted(set(options) - set(MODEL_OPTIONS))
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    check_features_head(features, out_indices, pooling, classes, classifier_activation)
    include_top = include_top and not features
    options = check_options(arch, name, options)
    classes = arch.default_classes if classes is None else classes
    weights_key = published_weights_key(arch)
    check_head(include_top, weights, pooling, classes, weights_key, name, arch)
    config = layer_config(arch.config, data_format=data_format, dtype=dtype, weight_decay=weight_decay,
                          sync_bn=sync_bn, zero_init_residual=options["zero_init_residual"])
    inputs, image = resolve_input(input_tensor, input_shape, default_size=arch.default_size, min_size=arch.min_size,
                                  config=config, require_rgb=weights == "imagenet")
    maps = arch.feature_maps(image, config, options)
    outputs = head(maps[-1][1], include_top=include_top, pooling=pooling, classes=classes,
                   classifier_activation=classifier_activation, config=config)
    with _deep_graph_recursion():
        model = keras.Model(inputs, outputs, name=name)
    setattr(model, torch_weights.ARCHITECTURE_ATTRIBUTE, arch)  # how load_checkpoint finds its family's name map
    if weights is not None and options["memory_efficient"]:
        # The memory-efficient model's first BN and conv of each dense layer are sublayers, so weight files (saved by
        # either model) do not match it layer by layer; the plain twin has the same weights in the same order.
        twin = build_model(include_top, weights, None, tuple(model.input_shape[1:]), pooling, classes,
                           classifier_activation, name, architecture=arch, data_format=data_format, dtype=dtype,
                           weight_decay=weight_decay, sync_bn=sync_bn, **{**options, "memory_efficient": False})
        model.set_weights(twin.get_weights())
        preprocessing = torch_weights.preprocessing_of(twin)  # a named source's record belongs to this model
        if preprocessing is not None:
            setattr(model, torch_weights.PREPROCESSING_ATTRIBUTE, preprocessing)
    else:
        weights_lib.load(model, weights, weights_key, include_top, arch)
    return feature_model(model, inputs, pyramid(maps), out_indices, name) if features else model


# Registration: one call per named model, next to its family's factories.

#: Paper-figure labels. CIFAR figures are test errors in percent; "+" marks standard augmentation (pad 4, random
#: crop, horizontal flip), no "+" none. ImageNet's figure is the single-crop top-1 accuracy in percent.
FIGURE_LABELS = {"C10": "CIFAR-10 error, no augmentation", "C10+": "CIFAR-10 error, standard augmentation",
                 "C100": "CIFAR-100 error, no augmentation", "C100+": "CIFAR-100 error, standard augmentation",
                 "top-1": "ImageNet top-1 accuracy"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Registration:
    """A named model as its family module defines it.

    ``figures``: the published results, label (see :data:`FIGURE_LABELS`) -> percent, the headline first.
    ``source``: where an ImageNet figure comes from ("torchvision", "keras", "paper"). ``note``: a remark shown after
    the figures. ``weights``: the keras.applications weights file stem (``"resnet50"``) if that file fits this
    architecture. ``warmup``: the recipe warms up at a low learning rate first (He et al.'s ResNet-110 and -1202).
    """

    name: str
    factory: Callable
    architecture: Architecture
    family: str
    figures: Mapping[str, float]
    source: str = ""
    note: str = ""
    weights: Optional[str] = None
    warmup: bool = False

    def __post_init__(self):
        for label in self.figures:
            checks.one_of("a paper figure's label", label, FIGURE_LABELS)
        if not self.figures:
            checks.fail("figures", "at least one paper figure", self.figures)

    @property
    def dataset(self) -> str:
        return self.architecture.dataset

    @property
    def input_size(self) -> int:
        return self.architecture.default_size

    @property
    def default_classes(self) -> int:
        return self.architecture.default_classes

    @property
    def error(self) -> float:
        """The headline error in percent: ImageNet top-1 error, else CIFAR-10 with augmentation (C10+) if published,
        else without (C10)."""
        if "top-1" in self.figures:
            return round(100 - self.figures["top-1"], 2)
        return self.figures["C10+"] if "C10+" in self.figures else self.figures["C10"]

    @property
    def reference(self) -> str:
        """The figures as the README table shows them: ``C10+ error 5.46%, C100+ 24.33%``."""
        if "top-1" in self.figures:
            text = f"top-1 acc {self.figures['top-1']}% ({self.source})"
        else:
            text = ", ".join(f"{label} {'error ' if i == 0 else ''}{value:.2f}%"
                             for i, (label, value) in enumerate(self.figures.items()))
        return f"{text} ({self.note})" if self.note else text

    def build(self, **kwargs: Any):
        return self.factory(**kwargs)


_REGISTERED: List[Registration] = []


#: The arguments and result of every named factory, for its docstring.
FACTORY_ARGS = """

Args:
    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name:
        keras.applications' eight arguments, in its positional order (``name`` defaults to the registered name;
        ``weights`` to None: most of these models publish none, and nothing downloads unasked).
    **options: ``data_format``, ``dtype``, ``weight_decay``, ``sync_bn``, ``features``, ``out_indices`` and the
        model options this architecture takes (see :func:`keras_convnets.models.application.build_model`).

Returns:
    A ``keras.Model`` (with ``features=True``: its pyramid levels as a dict).
"""


def _factory(builder: Callable, architecture: Architecture, default_name: str) -> Callable:
    """``builder`` with ``architecture`` fixed: a function of keras.applications' eight arguments, positional or by
    keyword (``name`` defaulting to ``default_name``), and the model options by keyword."""

    def factory(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=None, classifier_activation="softmax", name=default_name, **options):
        return builder(include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation,
                       name, architecture=architecture, **options)

    return factory


def register(builder: Callable, factory_name: str, architecture: Architecture, doc: str, *, name: str,
             **registration: Any) -> Callable:
    """Defines the named factory ``factory_name`` and registers it.

    Args:
        builder: the family's builder (:func:`build_model`).
        factory_name: the factory's Python name (``"ResNet50"``).
        architecture: what it builds.
        doc: the first words of its docstring; the paper's figures and :data:`FACTORY_ARGS` follow.
        name: the registry name (``"resnet50"``), also the model's default name.
        **registration: the rest of :class:`Registration`'s fields (``family``, ``figures``, ...).

    Returns:
        The factory: a function taking keras.applications' arguments in their positional order and every option
        by keyword (:func:`_factory`).
    """
    if any(r.name == name for r in _REGISTERED):
        raise ValueError(f"model {name!r} is registered twice")
    factory = _factory(builder, architecture, name)
    entry = Registration(name=name, factory=factory, architecture=architecture, **registration)
    factory.__name__ = factory.__qualname__ = factory_name
    factory.__doc__ = f"{doc} ({entry.reference}).{FACTORY_ARGS}"
    factory.__module__ = type(architecture).__module__  # the family module that registers it
    _REGISTERED.append(entry)
    return factory


def registrations() -> List[Registration]:
    """The registered models in registration order (import the family modules first; the registry does)."""
    return list(_REGISTERED)


def published_weights_key(arch: Architecture) -> Optional[str]:
    """The keras.applications weights file stem of the registered model with this architecture, else None."""
    return next((r.weights for r in _REGISTERED if r.weights and r.architecture == arch), None)
