"""Every model by a lower-case name, with what is known of it: ``get_model("densenet_bc_100")``, ``list_models()``,
``get_backbone("resnet50")`` (its feature pyramid), ``model_info(name).levels`` (the pyramid's strides and channels).

Data, training, export and the CLI know models only through this table. It holds no model of its own: each family
module registers its named models where it defines them (:func:`keras_convnets.models.application.register`), and the
parameter and FLOP counts come from :mod:`keras_convnets.models.counts`, which this module's command line generates
from the built models::

    python -m keras_convnets.models.registry --write            # count new models; counts.py and README's table
    python -m keras_convnets.models.registry --write resnet26   # recount the named models
    python -m keras_convnets.models.registry --write all        # recount every model (minutes)
    python -m keras_convnets.models.registry --check            # exit 1 if either is stale
"""

import dataclasses
import os
from typing import Callable, Dict, List, Optional, Tuple

from keras_convnets import checks
from keras_convnets.models import application, counts, densenet, pretrained, resnet  # noqa: F401 (families register)
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


def _levels(row) -> Optional[Tuple[FeatureLevel, ...]]:
    """counts.py's ``((name, channels), ...)`` as FeatureLevels (the stride is the name's: P3 is stride 8)."""
    if row is None:
        return None
    return tuple(FeatureLevel(name, 2 ** int(name[1:]), channels) for name, channels in row)


def _info(registration: application.Registration) -> ModelInfo:
    fields = {f.name: getattr(registration, f.name) for f in dataclasses.fields(registration)}
    params, flops = counts.COUNTS.get(registration.name, (None, None))
    return ModelInfo(**fields, params=params, flops=flops, levels=_levels(counts.LEVELS.get(registration.name)))


def _table_order(registration: application.Registration) -> tuple:
    """ImageNet models first, then CIFAR; ResNets before DenseNets; definition order within a module."""
    return registration.dataset == "cifar", registration.family == "densenet"


REGISTRY: Dict[str, ModelInfo] = {r.name: _info(r) for r in sorted(application.registrations(), key=_table_order)}


def list_models(dataset: Optional[str] = None) -> List[str]:
    """The registered names, in table order; ``dataset="cifar"`` or ``"imagenet"`` to filter."""
    checks.one_of("dataset", dataset, (None, "cifar", "imagenet"))
    return [name for name, info in REGISTRY.items() if dataset in (None, info.dataset)]


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``, or a ValueError listing the names that exist."""
    key = str(name).lower().replace("-", "_")
    if key not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}")
    return REGISTRY[key]


def get_model(name: str, **kwargs) -> Callable:
    """Builds the registered model ``name`` with the factory's keyword arguments (``classes``, ``weights``, ...)."""
    return model_info(name).build(**kwargs)


def get_backbone(name: str, **kwargs) -> Callable:
    """The registered model ``name`` as a backbone for detection or segmentation: ``get_model(name, features=True,
    **kwargs)``, a Keras model returning the dict of its pyramid levels, ``{"P1": ..., "P5": ...}`` on ImageNet models
    (strides 2 to 32), ``{"P0": ..., "P2": ...}`` on CIFAR ones (strides 1 to 4); ``model_info(name).levels`` lists
    their strides and channels. Takes the factory's keyword arguments (``weights``, ``input_shape``,
    ``memory_efficient``, ...) and ``out_indices`` (level indices or names) to return only some levels."""
    return model_info(name).build(features=True, **kwargs)


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
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
COUNTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "counts.py")


def readme_with_table(text: str) -> str:
    """``text`` (a README) with the text between its model-table markers replaced by :func:`markdown_table`."""
    start, end = (text.index(marker) for marker in README_MARKERS)
    return text[:start + len(README_MARKERS[0])] + "\n" + markdown_table() + "\n" + text[end:]


def write_readme_table(path: str) -> None:
    """Replaces the text between the README's model-table markers with :func:`markdown_table`."""
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(readme_with_table(text))


def count(name: str) -> tuple:
    """``(trainable parameters, multiply-adds)`` of the registered model ``name``, counted from the built model."""
    import numpy as np

    from keras_convnets.models.backend import keras
    from keras_convnets.models.flops import count_flops

    keras.backend.clear_session()
    model = get_model(name)
    return int(sum(np.prod(w.shape) for w in model.trainable_weights)), count_flops(model)


def count_levels(name: str) -> tuple:
    """``((level name, channels), ...)`` of registered model ``name``'s pyramid, from its backbone built at its
    smallest input (channels do not depend on the input size)."""
    from keras_convnets.models.backend import keras

    keras.backend.clear_session()
    info = model_info(name)
    size = info.architecture.min_size
    backbone = get_backbone(name, input_shape=(size, size, 3))
    return tuple((level, int(tensor.shape[-1])) for level, tensor in backbone.output.items())


def counts_source(table: Dict[str, tuple], levels: Dict[str, tuple]) -> str:
    """The text of counts.py for ``table`` (name -> (params, flops)) and ``levels`` (name -> ((level, channels),
    ...)), in registration order."""
    rows = "".join(f'    "{name}": ({table[name][0]:_}, {table[name][1]:_}),\n' for name in REGISTRY if name in table)
    level_rows = "".join(f'    "{name}": {tuple(levels[name])!r},\n' for name in REGISTRY if name in levels)
    header = ("Generated by ``python -m keras_convnets.models.registry --write``; do not edit. Each registered "
              "model's\ntrainable parameters and multiply-adds at its default input size and classes, counted from "
              "the built model;\ntests/test_models.py checks the parameters against the papers' and test_flops.py the "
              "FLOPs.\nLEVELS: the channels of its feature pyramid (features=True), from the built backbone; "
              "tests/test_features.py\nchecks them against built models.\n")
    return (f'"""{header}"""\n\n#: name -> (trainable parameters, multiply-adds)\nCOUNTS = {{\n{rows}}}\n\n'
            f'#: name -> ((pyramid level, channels), ...), shallowest first\nLEVELS = {{\n{level_rows}}}\n')


def main(argv: Optional[List[str]] = None) -> int:
    """``--write [NAMES | all]``: count the named models (default: those counts.py lacks; ``all``: every one) into
    counts.py and regenerate README.md's table; ``--check``: exit 1 if counts.py misses a model or README.md's table
    is stale; no argument: print the table."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--write"]:
        missing = [name for name, info in REGISTRY.items() if info.params is None or info.levels is None]
        names = list(REGISTRY) if argv[1:] == ["all"] else argv[1:] or missing
        table = {name: counts.COUNTS[name] for name in REGISTRY if name in counts.COUNTS}
        levels = {name: counts.LEVELS[name] for name in REGISTRY if name in counts.LEVELS}
        for name in (model_info(name).name for name in names):
            if name not in table or argv[1:]:   # counting FLOPs takes a full build: only when asked or missing
                table[name] = count(name)
            levels[name] = count_levels(name)
            print(f"{name}: {table[name][0]:,} parameters, {table[name][1]:,} MACs, levels {levels[name]}")
        with open(COUNTS_FILE, "w") as f:
            f.write(counts_source(table, levels))
        for name, (params, flops) in table.items():  # the README table below reads the new counts
            REGISTRY[name] = dataclasses.replace(REGISTRY[name], params=params, flops=flops,
                                                 levels=_levels(levels.get(name)))
        write_readme_table(README)
        return 0
    if argv[:1] == ["--check"]:
        problems = [f"{name} has no counts" for name, info in REGISTRY.items() if info.params is None]
        problems += [f"{name} has no pyramid levels" for name, info in REGISTRY.items() if info.levels is None]
        with open(README) as f:
            text = f.read()
        if readme_with_table(text) != text:
            problems.append("README.md's model table is stale")
        for problem in problems:
            print(problem)
        if problems:
            print("run: python -m keras_convnets.models.registry --write")
        return 1 if problems else 0
    print(markdown_table())
    return 0


__all__ = ["ModelInfo", "FeatureLevel", "get_model", "get_backbone", "list_models", "model_info"]

if __name__ == "__main__":
    raise SystemExit(main())
