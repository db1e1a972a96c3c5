"""Every model by a lower-case name, with what is known of it: ``get_model("densenet_bc_100")``, ``list_models()``.

Data, training, export and the CLI know models only through this table.
"""

import dataclasses
from typing import Callable, Dict, List, Optional

from keras_convnets.models import densenet, resnet
from keras_convnets.models.flops import format_flops


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """A registered model. ``params``: trainable parameters (torchvision / paper convention) with the default number
    of classes (1000 ImageNet, 10 CIFAR). ``reference``: the paper's (or reference implementation's) figure.
    ``family``: the training recipe it follows (see :mod:`keras_convnets.training.recipes`). ``flops``: multiply-adds of one
    forward pass at the default input size and classes (torchvision convention, see :mod:`keras_convnets.models.flops`)."""

    name: str
    factory: Callable
    dataset: str            # "imagenet" or "cifar": the input size and stem it is designed for
    family: str             # "resnet", "preact_resnet", "wrn", "resnext", "densenet"
    params: int
    reference: str
    flops: int
    error: float            # percent: ImageNet top-1 error; CIFAR-10 error with standard augmentation (C10+)

    @property
    def input_size(self) -> int:
        return 224 if self.dataset == "imagenet" else 32

    @property
    def default_classes(self) -> int:
        return 1000 if self.dataset == "imagenet" else 10

    def build(self, **kwargs):
        return self.factory(**kwargs)


def _imagenet(name, factory, family, params, flops, top1, source):
    return ModelInfo(name, factory, "imagenet", family, params, f"top-1 acc {top1}% ({source})", flops,
                     round(100 - top1, 2))


def _cifar(name, factory, family, params, flops, error, reference):
    return ModelInfo(name, factory, "cifar", family, params, reference, flops, error)


_MODELS = [
    _imagenet("resnet18", resnet.ResNet18, "resnet", 11_689_512, 1_814_073_344, 69.76, "torchvision"),
    _imagenet("resnet34", resnet.ResNet34, "resnet", 21_797_672, 3_663_761_408, 73.31, "torchvision"),
    _imagenet("resnet50", resnet.ResNet50, "resnet", 25_583_592, 3_857_973_248, 74.9, "keras"),
    _imagenet("resnet101", resnet.ResNet101, "resnet", 44_601_832, 7_570_194_432, 76.4, "keras"),
    _imagenet("resnet152", resnet.ResNet152, "resnet", 60_268_520, 11_282_415_616, 76.6, "keras"),
    _imagenet("resnet50v2", resnet.ResNet50V2, "preact_resnet", 25_568_360, 3_482_255_360, 76.0, "keras"),
    _imagenet("resnet101v2", resnet.ResNet101V2, "preact_resnet", 44_577_896, 7_194_476_544, 77.2, "keras"),
    _imagenet("resnet152v2", resnet.ResNet152V2, "preact_resnet", 60_236_904, 10_906_697_728, 78.0, "keras"),
    _imagenet("resnext50_32x4d", resnet.ResNeXt50_32x4d, "resnext", 25_028_904, 4_230_479_872, 77.62, "torchvision"),
    _imagenet("resnext101_32x8d", resnet.ResNeXt101_32x8d, "resnext", 88_791_336, 16_414_015_488, 79.31, "torchvision"),
    _imagenet("wide_resnet50_2", resnet.WideResNet50_2, "wrn", 68_883_240, 11_398_021_120, 78.47, "torchvision"),
    _imagenet("densenet121", densenet.DenseNet121, "densenet", 7_978_856, 2_834_161_664, 75.0, "keras"),
    _imagenet("densenet169", densenet.DenseNet169, "densenet", 14_149_480, 3_359_843_328, 76.2, "keras"),
    _imagenet("densenet201", densenet.DenseNet201, "densenet", 20_013_928, 4_291_365_888, 77.3, "keras"),
    _imagenet("densenet264", densenet.DenseNet264, "densenet", 33_337_704, 5_751_653_376, 77.85, "paper: 22.15% error"),
    _imagenet("densenet161", densenet.DenseNet161, "densenet", 28_681_000, 7_727_907_072, 77.14, "torchvision"),
    _cifar("resnet20", resnet.ResNet20, "resnet", 269_722, 40_551_040, 8.75, "C10 error 8.75%"),
    _cifar("resnet32", resnet.ResNet32, "resnet", 464_154, 68_862_592, 7.51, "C10 error 7.51%"),
    _cifar("resnet44", resnet.ResNet44, "resnet", 658_586, 97_174_144, 7.17, "C10 error 7.17%"),
    _cifar("resnet56", resnet.ResNet56, "resnet", 853_018, 125_485_696, 6.97, "C10 error 6.97%"),
    _cifar("resnet110", resnet.ResNet110, "resnet", 1_727_962, 252_887_680,
              6.43, "C10 error 6.43% (5.23% with stochastic depth)"),
    _cifar("resnet1202", resnet.ResNet1202, "resnet", 19_421_274, 2_829_238_912, 7.93, "C10 error 7.93%"),
    _cifar("preact_resnet164", resnet.PreActResNet164, "preact_resnet", 1_703_258, 247_646_720,
              5.46, "C10+ error 5.46%, C100+ 24.33%"),
    _cifar("preact_resnet1001", resnet.PreActResNet1001, "preact_resnet", 10_327_706, 1_490_995_712,
              4.92, "C10+ error 4.92%"),
    _cifar("wrn_16_4", resnet.WRN16_4, "wrn", 2_748_890, 392_612_352, 5.02, "C10+ error 5.02%"),
    _cifar("wrn_16_8", resnet.WRN16_8, "wrn", 10_961_370, 1_548_145_664, 4.27, "C10+ error 4.27%"),
    _cifar("wrn_28_10", resnet.WRN28_10, "wrn", 36_479_194, 5_243_328_768,
              4.00, "C10+ error 4.00% (3.89% with dropout 0.3)"),
    _cifar("wrn_40_4", resnet.WRN40_4, "wrn", 8_949_210, 1_298_582_016, 4.53, "C10+ error 4.53%"),
    _cifar("resnext29_8x64d", resnet.ResNeXt29_8x64d, "resnext", 34_426_698, 5_387_266_048, 3.65, "C10+ error 3.65%"),
    _cifar("resnext29_16x64d", resnet.ResNeXt29_16x64d, "resnext", 68_155_210, 10_688_866_304,
              3.58, "C10+ error 3.58%"),
    _cifar("densenet40", densenet.DenseNet40, "densenet", 1_019_722, 264_812_928, 5.24, "C10 error 7.00%, C10+ 5.24%"),
    _cifar("densenet100", densenet.DenseNet100, "densenet", 6_979_642, 1_769_516_448,
              4.10, "C10 error 5.77%, C10+ 4.10%"),
    _cifar("densenet_bc_100", densenet.DenseNetBC100, "densenet", 769_162, 287_929_692,
              4.51, "C10+ error 4.51%, C100+ 22.27%"),
    _cifar("densenet_bc_250", densenet.DenseNetBC250, "densenet", 15_324_406, 5_418_785_724, 3.62, "C10+ error 3.62%"),
    _cifar("densenet_bc_190", densenet.DenseNetBC190, "densenet", 25_624_430, 9_301_945_740, 3.46, "C10+ error 3.46%"),
]

REGISTRY: Dict[str, ModelInfo] = {info.name: info for info in _MODELS}


def list_models(dataset: Optional[str] = None) -> List[str]:
    """The registered names, in table order; ``dataset="cifar"`` or ``"imagenet"`` to filter."""
    if dataset not in (None, "cifar", "imagenet"):
        raise ValueError(f"dataset must be None, 'cifar' or 'imagenet'; got {dataset!r}")
    return [name for name, info in REGISTRY.items() if dataset in (None, info.dataset)]


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``, or a ValueError listing the names that exist."""
    key = str(name).lower().replace("-", "_")
    if key not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}")
    return REGISTRY[key]


def get_model(name: str, **kwargs):
    """Builds the registered model ``name`` with the factory's keyword arguments (``classes``, ``weights``, ...)."""
    return model_info(name).build(**kwargs)


def markdown_table() -> str:
    """The README's model table, generated from the registry (the README test checks it is current)."""
    from keras_convnets.models.torch_weights import pretrained_sources

    rows = ["| name | factory | input | trainable params | FLOPs (multiply-adds) | reference | pretrained weights |",
            "| --- | --- | --- | ---: | ---: | --- | --- |"]
    for info in REGISTRY.values():
        size = info.input_size
        rows.append(f"| `{info.name}` | `{info.factory.__name__}` | {size}×{size} | {info.params:,} | "
                    f"{format_flops(info.flops)} | {info.reference} | {pretrained_sources(info.name)} |")
    return "\n".join(rows)


README_MARKERS = ("<!-- models:start -->", "<!-- models:end -->")


def write_readme_table(path: str) -> None:
    """Replaces the text between the README's model-table markers with :func:`markdown_table`."""
    with open(path) as f:
        text = f.read()
    start, end = (text.index(marker) for marker in README_MARKERS)
    text = text[:start + len(README_MARKERS[0])] + "\n" + markdown_table() + "\n" + text[end:]
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--write"]:
        write_readme_table(sys.argv[2] if len(sys.argv) > 2 else "README.md")
    else:
        print(markdown_table())
