"""Every model by a lower-case name, with what is known of it: ``get_model("densenet_bc_100")``, ``list_models()``,
``get_backbone("resnet50")`` (its feature pyramid), ``model_info(name).levels`` (the pyramid's strides and channels).

Data, training, export and the CLI know models only through this table. It holds no model of its own: each family
module registers its named models where it defines them (:func:`keras_convnets.models.application.register`), and the
parameter and FLOP counts come from :mod:`keras_convnets.models.counts`, which the developer tool
``python -m tools.registry --write`` (outside the package, at the repository's top) generates from the built models,
with README.md's model table (:func:`markdown_table`).
"""

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

from keras_convnets import checks
from keras_convnets.models import application, counts, densenet, pretrained, resnet  # noqa: F401 (families register)
from keras_convnets.models.backend import keras
from keras_convnets.models.flops import format_flops


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelInfo(application.Registration):
    """A registered model (see :class:`~keras_convnets.models.application.Registration`: ``name``, ``factory``,
    ``family`` -- the training recipe it follows, see :mod:`keras_convnets.training.recipes` --, ``figures``,
    ``reference``, ``error``, ``dataset``, ``weights``, ``warmup``) and its counted size: ``params``, trainable
    parameters (torchvision / paper convention), and ``flops``, multiply-adds of one forward pass (torchvision
    convention, see :mod:`keras_convnets.models.flops`), both at the default input size and number of classes (1000
    ImageNet, 10 CIFAR). Both are None for a model registered since counts.py was last generated."""

    params: Optional[int] = None
    flops: Optional[int] = None
    levels: Optional[Tuple["FeatureLevel", ...]] = None


@dataclasses.dataclass(frozen=True)
class FeatureLevel:
    """One level of a model's feature pyramid (``features=True``, :func:`get_backbone`): its name ``P{log2(stride)}``,
    its stride (input size / feature map size) and its channel count, counted from the built backbone."""

    name: str
    stride: int
    channels: int


def feature_levels(row) -> Optional[Tuple[FeatureLevel, ...]]:
    """counts.py's ``((name, channels), ...)`` as FeatureLevels (the stride is the name's: P3 is stride 8)."""
    if row is None:
        return None
    return tuple(FeatureLevel(name, 2 ** int(name[1:]), channels) for name, channels in row)


def _info(registration: application.Registration) -> ModelInfo:
    fields = {f.name: getattr(registration, f.name) for f in dataclasses.fields(registration)}
    params, flops = counts.COUNTS.get(registration.name, (None, None))
    return ModelInfo(**fields, params=params, flops=flops, levels=feature_levels(counts.LEVELS.get(registration.name)))


def _table_order(registration: application.Registration) -> tuple:
    """ImageNet models first, then CIFAR; ResNets before DenseNets; definition order within a module."""
    return registration.dataset == "cifar", registration.family == "densenet"


REGISTRY: Dict[str, ModelInfo] = {r.name: _info(r) for r in sorted(application.registrations(), key=_table_order)}


def list_models(dataset: Optional[str] = None) -> List[str]:
    """The registered names, in table order.

    Args:
        dataset: None for all, ``"cifar"`` or ``"imagenet"`` to filter.

    Returns:
        The names ``get_model`` takes.
    """
    checks.one_of("dataset", dataset, (None, "cifar", "imagenet"))
    return [name for name, info in REGISTRY.items() if dataset in (None, info.dataset)]


def model_info(name: str) -> ModelInfo:
    """What is known of a registered model.

    Args:
        name: a registered name (case and ``-`` / ``_`` do not matter).

    Returns:
        Its :class:`ModelInfo`; a ValueError lists the names that exist.
    """
    key = str(name).lower().replace("-", "_")
    if key not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}")
    return REGISTRY[key]


def get_model(name: str, **kwargs) -> Callable:
    """Builds a registered model.

    Args:
        name: a registered name (:func:`list_models`).
        **kwargs: the factory's arguments (``classes``, ``weights``, ``input_shape``, ``memory_efficient``, ...).

    Returns:
        The ``keras.Model``, on whatever Keras backend this process runs.
    """
    return model_info(name).build(**kwargs)


def get_backbone(name: str, **kwargs) -> Callable:
    """A registered model as a backbone for detection or segmentation: ``get_model(name, features=True, **kwargs)``.

    Args:
        name: a registered name.
        **kwargs: the factory's arguments (``weights``, ``input_shape``, ``memory_efficient``, ...) and
            ``out_indices`` (level indices or names) to return only some levels.

    Returns:
        A Keras model returning the dict of its pyramid levels, ``{"P1": ..., "P5": ...}`` on ImageNet models (strides
        2 to 32), ``{"P0": ..., "P2": ...}`` on CIFAR ones (strides 1 to 4); ``model_info(name).levels`` lists their
        strides and channels.
    """
    return model_info(name).build(features=True, **kwargs)


def load_model(path, **kwargs):
    """Loads a ``.keras`` file of one of our models (or any model using our layers).

    Args:
        path: the ``.keras`` file, as ``model.save`` wrote it.
        **kwargs: Keras' ``keras.models.load_model`` arguments (``compile``, ``safe_mode``, ...).

    Returns:
        The model, as ``keras.models.load_model`` returns it. Importing this module registered our layers with Keras
        (they register where they are defined), so their names in the file resolve; nothing else differs.
    """
    return keras.models.load_model(path, **kwargs)


def markdown_table() -> str:
    """The README's model table, generated from the registry (the README test checks it is current)."""
    rows = ["| name | factory | input | trainable params | FLOPs (multiply-adds) | reference | pretrained weights | "
            "backbone channels (`features=True`) |",
            "| --- | --- | --- | ---: | ---: | --- | --- | --- |"]
    for info in REGISTRY.values():
        size = info.input_size
        rows.append(f"| `{info.name}` | `{info.factory.__name__}` | {size}×{size} | {info.params or 0:,} | "
                    f"{'?' if info.flops is None else format_flops(info.flops)} | {info.reference} | "
                    f"{pretrained.pretrained_sources(info.name)} | {levels_cell(info.levels)} |")
    return "\n".join(rows)


def levels_cell(levels: Optional[Tuple[FeatureLevel, ...]]) -> str:
    """``P1-P5: 64, 256, 512, 1024, 2048``: the README table's pyramid cell."""
    if not levels:
        return "?"
    return f"{levels[0].name}-{levels[-1].name}: {', '.join(str(level.channels) for level in levels)}"


README_MARKERS = ("<!-- models:start -->", "<!-- models:end -->")

__all__ = ["ModelInfo", "FeatureLevel", "get_model", "get_backbone", "list_models", "model_info", "load_model"]
