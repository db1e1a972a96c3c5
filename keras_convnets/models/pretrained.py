"""Every set of published pretrained weights we load, one record each: where the file is, how it is checked, and
what input it expects (mean/std, channel order, resize, crop, interpolation) and which classes it predicts.

One :class:`PretrainedWeights` per (model, source, tag): keras.applications' files (``source="keras.applications"``,
tag ``"imagenet"`` with the classifier, ``"imagenet_notop"`` without; each pair is a :class:`PublishedWeights` in
:data:`KERAS_APPLICATIONS`), torchvision's ``IMAGENET1K_V1`` / ``V2`` files (tags ``"v1"`` / ``"v2"``) and timm's
Hugging Face files (timm's pretrained tags) in :data:`TORCH`. Loading (:mod:`keras_convnets.models.weights`,
:mod:`keras_convnets.models.torch_weights`), the fine-tuning normalisation
(:mod:`keras_convnets.data.catalog`) and ``convert --export`` (:mod:`keras_convnets.serving.convert`) read these
records and nothing else.

A leaf: imports nothing of the package and no TensorFlow.
"""

import dataclasses
import hashlib
import os
import re
from typing import Dict, List, Optional, Tuple

#: ImageNet channel statistics of pixels in [0, 1], used by torchvision and timm for all their weights below, and by
#: keras.applications' "torch" mode.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The classes every record below predicts: ImageNet-1k in tfds' imagenet2012 order
#: (:mod:`keras_convnets.models.imagenet`).
IMAGENET_CLASSES = "imagenet2012"


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What a set of pretrained weights expects at inference: resize the shorter side to ``resize_size`` with
    ``interpolation``, center-crop ``input_size``, scale to [0, 1], subtract ``mean`` and divide by ``std`` per
    channel (both in RGB order), then reverse the channels if ``channel_order`` is ``"bgr"`` (keras.applications'
    caffe mode). ``description`` says which convention it is, for a run's first lines. (``mean``/``std`` make it
    usable wherever a DatasetSpec's statistics are, e.g. :func:`keras_convnets.data.preprocessing.preprocessing_model`.)
    """

    input_size: int = 224
    resize_size: int = 256
    interpolation: str = "bilinear"
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "rgb"
    description: str = "ImageNet (torch mode: x/255, mean, std)"

    @property
    def crop_fraction(self) -> float:
        return self.input_size / self.resize_size


#: keras.applications' ``preprocess_input`` modes (keras/src/applications/imagenet_utils.py); "torch" is also
#: torchvision's and timm's normalisation.
TORCH_MODE = Preprocessing()
TF_MODE = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), description="ImageNet (tf mode: x/127.5 - 1)")
CAFFE_MODE = Preprocessing(mean=(123.68 / 255, 116.779 / 255, 103.939 / 255), std=(1 / 255,) * 3, channel_order="bgr",
                           description="ImageNet (caffe mode: BGR, mean subtracted, not scaled)")


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """One published weights file: where it is, how to check it, what input it expects, what it predicts.

    ``sha256_prefix``: torchvision names its files after the first hex digits of their SHA-256 (checked after the
    download, as torch.hub does); timm's Hugging Face files carry no hash we could record offline (None). ``md5``:
    keras.applications' published MD5 of the file (checked by ``keras.utils.get_file``).
    """

    source: str          # "keras.applications", "torchvision" or "timm"
    tag: str             # "imagenet" / "imagenet_notop", "v1" / "v2", or timm's tag ("tv_in1k", "a1_in1k", ...)
    url: str
    file_name: str       # the name it is cached under (~/.keras/models/)
    sha256_prefix: Optional[str]
    preprocessing: Preprocessing
    md5: Optional[str] = None
    model: str = ""      # the publisher's model name ("resnet50", "densenet121", ...)
    class_names: Optional[str] = IMAGENET_CLASSES   # None: no classifier in the file

    @property
    def spec(self) -> str:
        """How ``weights=`` names it: ``"torchvision"`` (v1), ``"torchvision:v2"``, ``"timm:<tag>"``,
        ``"imagenet"``."""
        if self.source == "keras.applications":
            return "imagenet"
        return self.source if self.source == "torchvision" and self.tag == "v1" else f"{self.source}:{self.tag}"


#: The name the torchvision / timm entries were known by before the record took over both kinds.
PublishedCheckpoint = PretrainedWeights

# ------------------------------------------------------------------------------------------- keras.applications

_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"
#: keras.applications' ``preprocess_input`` mode of each model it publishes weights for (by file stem).
_KERAS_MODES = {"resnet50": CAFFE_MODE, "resnet101": CAFFE_MODE, "resnet152": CAFFE_MODE,
                "resnet50v2": TF_MODE, "resnet101v2": TF_MODE, "resnet152v2": TF_MODE}


@dataclasses.dataclass(frozen=True)
class PublishedWeights:
    """One keras.applications weights file pair: with and without the classifier, each checked by its MD5; its two
    :class:`PretrainedWeights` records are :meth:`record`."""

    folder: str
    stem: str
    top_md5: str
    notop_md5: str

    def file_name(self, include_top: bool) -> str:
        suffix = "" if include_top else "_notop"
        return f"{self.stem}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"

    def url(self, include_top: bool) -> str:
        return f"{_GCS}{self.folder}/{self.file_name(include_top)}"

    def md5(self, include_top: bool) -> str:
        return self.top_md5 if include_top else self.notop_md5

    @property
    def preprocessing(self) -> Preprocessing:
        """keras.applications' mode for this model: caffe (BGR) for ResNet v1, tf for v2, torch for DenseNet."""
        return _KERAS_MODES.get(self.stem, TORCH_MODE)

    def record(self, include_top: bool) -> PretrainedWeights:
        return PretrainedWeights("keras.applications", "imagenet" if include_top else "imagenet_notop",
                                 self.url(include_top), self.file_name(include_top), None, self.preprocessing,
                                 md5=self.md5(include_top), model=self.stem,
                                 class_names=IMAGENET_CLASSES if include_top else None)


#: keras.applications' files by weights key (a registration's ``weights``). The hashes are keras.applications'
#: published ones (keras/src/applications/resnet.py, densenet.py).
KERAS_APPLICATIONS: Dict[str, PublishedWeights] = {
    "resnet50": PublishedWeights("resnet", "resnet50", "2cb95161c43110f7111970584f804107",
                                 "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": PublishedWeights("resnet", "resnet101", "f1aeb4b969a6efcfb50fad2f0c20cfc5",
                                  "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": PublishedWeights("resnet", "resnet152", "100835be76be38e30d865e96f2aaae62",
                                  "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": PublishedWeights("resnet", "resnet50v2", "3ef43a0b657b3be2300d5770ece849e0",
                                   "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": PublishedWeights("resnet", "resnet101v2", "6343647c601c52e1368623803854d971",
                                    "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": PublishedWeights("resnet", "resnet152v2", "a49b44d1979771252814e80f8ec446f9",
                                    "ed17cf2e0169df9d443503ef94b23b33"),
    "densenet121": PublishedWeights("densenet", "densenet121", "9d60b8095a5708f2dcce2bca79d332c7",
                                    "30ee3e1110167f948a6b9946edeeb738"),
    "densenet169": PublishedWeights("densenet", "densenet169", "d699b8f76981ab1b30698df4c175e90b",
                                    "b8c4d4c20dd625c148057b9ff1c1176b"),
    "densenet201": PublishedWeights("densenet", "densenet201", "1ceb130c1ea1b78c3bf6114dbdfd8807",
                                    "c13680b51ded0fb44dff2d8f86ac8bb1"),
}


def keras_applications_file(path) -> Optional[str]:
    """The key (``"resnet50"``, ...) of the keras.applications file ``path`` is, known by its file name (as
    ``keras.utils.get_file`` caches it) or its published MD5; None for any other file (e.g. one saved by our own
    ``save_weights``), whose provenance a caller cannot tell."""
    name = os.path.basename(os.fspath(path))
    for key, entry in KERAS_APPLICATIONS.items():
        if name in (entry.file_name(True), entry.file_name(False)):
            return key
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    md5 = digest.hexdigest()
    return next((key for key, entry in KERAS_APPLICATIONS.items() if md5 in (entry.top_md5, entry.notop_md5)), None)


def imagenet_preprocessing(weights_key: str) -> Preprocessing:
    """The input ImageNet weights of ``weights_key`` were trained on: keras.applications' mode for the models whose
    weights it publishes (ResNet v1: caffe; ResNet v2: tf; DenseNet: torch), torchvision's (torch mode) for the
    others."""
    entry = KERAS_APPLICATIONS.get(weights_key)
    return entry.preprocessing if entry is not None else TORCH_MODE


# ------------------------------------------------------------------------------------------- torchvision, timm

def _timm_crop(crop_pct: float, input_size: int = 224, interpolation: str = "bilinear") -> Preprocessing:
    """timm's ``crop_pct``: the shorter side is resized to ``floor(input_size / crop_pct)``."""
    return Preprocessing(input_size, int(input_size / crop_pct), interpolation)


_TORCHVISION_URL = "https://download.pytorch.org/models/"


def _torchvision(file_name: str, tag: str = "v1") -> PretrainedWeights:
    """torchvision's ``IMAGENET1K_V1`` (resize 256, crop 224) or ``IMAGENET1K_V2`` (resize 232) file."""
    prefix = re.search(r"-([0-9a-f]{8})\.pth$", file_name).group(1)
    preprocessing = Preprocessing(224, 256 if tag == "v1" else 232, "bilinear")
    return PretrainedWeights("torchvision", tag, _TORCHVISION_URL + file_name, file_name, prefix, preprocessing,
                             model=file_name.rsplit("-", 1)[0])


def _timm(model: str, tag: str, preprocessing: Preprocessing) -> PretrainedWeights:
    return PretrainedWeights("timm", tag, f"https://huggingface.co/timm/{model}.{tag}/resolve/main/model.safetensors",
                             f"timm_{model}.{tag}.safetensors", None, preprocessing, model=model)


# timm's configurations: torchvision-trained ResNets crop 0.875 bilinear; its DenseNets and its own recipes bicubic
# ("a1"/"a1h": ResNet strikes back, crop 0.95; "racm", "ra": crop 0.875).
_TIMM_TV = _timm_crop(0.875)
_TIMM_TV_DENSENET = _timm_crop(0.875, interpolation="bicubic")
_TIMM_RSB = _timm_crop(0.95, interpolation="bicubic")
_TIMM_RA = _timm_crop(0.875, interpolation="bicubic")

#: torchvision's model name -> its published torchvision and timm files, default first. URLs and file names are
#: torchvision's own (torchvision/models/resnet.py, densenet.py) and timm's Hugging Face hub names.
TORCH: Dict[str, List[PretrainedWeights]] = {
    "resnet18": [_torchvision("resnet18-f37072fd.pth"), _timm("resnet18", "tv_in1k", _TIMM_TV)],
    "resnet34": [_torchvision("resnet34-b627a593.pth"), _timm("resnet34", "tv_in1k", _TIMM_TV)],
    "resnet50": [_torchvision("resnet50-0676ba61.pth"), _torchvision("resnet50-11ad3fa6.pth", "v2"),
                 _timm("resnet50", "tv_in1k", _TIMM_TV), _timm("resnet50", "a1_in1k", _TIMM_RSB)],
    "resnet101": [_torchvision("resnet101-63fe2227.pth"), _torchvision("resnet101-cd907fc2.pth", "v2"),
                  _timm("resnet101", "tv_in1k", _TIMM_TV)],
    "resnet152": [_torchvision("resnet152-394f9c45.pth"), _torchvision("resnet152-f82ba261.pth", "v2"),
                  _timm("resnet152", "tv_in1k", _TIMM_TV)],
    "resnext50_32x4d": [_torchvision("resnext50_32x4d-7cdf4587.pth"),
                        _torchvision("resnext50_32x4d-1a0047aa.pth", "v2"),
                        _timm("resnext50_32x4d", "tv_in1k", _TIMM_TV), _timm("resnext50_32x4d", "a1h_in1k", _TIMM_RSB)],
    "resnext101_32x8d": [_torchvision("resnext101_32x8d-8ba56ff5.pth"),
                         _torchvision("resnext101_32x8d-110c445d.pth", "v2"),
                         _timm("resnext101_32x8d", "tv_in1k", _TIMM_TV)],
    "wide_resnet50_2": [_torchvision("wide_resnet50_2-95faca4d.pth"),
                        _torchvision("wide_resnet50_2-9ba9bcbe.pth", "v2"),
                        _timm("wide_resnet50_2", "tv_in1k", _TIMM_TV), _timm("wide_resnet50_2", "racm_in1k", _TIMM_RA)],
    "densenet121": [_torchvision("densenet121-a639ec97.pth"), _timm("densenet121", "tv_in1k", _TIMM_TV_DENSENET),
                    _timm("densenet121", "ra_in1k", _TIMM_RA)],
    "densenet161": [_torchvision("densenet161-8d451a50.pth"), _timm("densenet161", "tv_in1k", _TIMM_TV_DENSENET)],
    "densenet169": [_torchvision("densenet169-b2777c0a.pth"), _timm("densenet169", "tv_in1k", _TIMM_TV_DENSENET)],
    "densenet201": [_torchvision("densenet201-c1103571.pth"), _timm("densenet201", "tv_in1k", _TIMM_TV_DENSENET)],
}

#: The named sources ``weights=`` takes besides "imagenet".
SOURCES = ("torchvision", "timm")
#: Registered factories in keras.applications' layout whose torchvision / timm counterpart is our torchvision layout.
KERAS_LAYOUT_RESNETS = ("resnet50", "resnet101", "resnet152")


def is_named_source(weights) -> bool:
    """True for ``"torchvision"``, ``"torchvision:v2"``, ``"timm"``, ``"timm:<tag>"``."""
    return isinstance(weights, str) and weights.split(":", 1)[0] in SOURCES


def published_checkpoint(weights_name: str, weights: str) -> PretrainedWeights:
    """The record ``weights`` (``"torchvision[:tag]"``, ``"timm[:tag]"``) names for torchvision model
    ``weights_name``, or a ValueError listing what exists."""
    source, _, tag = weights.partition(":")
    entries = [entry for entry in TORCH.get(weights_name, ()) if entry.source == source]
    if not entries:
        known = ", ".join(sorted(TORCH))
        raise ValueError(f"weights={weights!r}: {source} publishes no checkpoint for '{weights_name}'; "
                         f"{source} weights exist for {known}")
    if not tag:
        return entries[0]
    tag = tag.split(".", 1)[1] if tag.startswith(weights_name + ".") else tag   # "timm:resnet18.tv_in1k" too
    for entry in entries:
        if entry.tag == tag:
            return entry
    raise ValueError(f"weights={weights!r}: unknown {source} tag for '{weights_name}'; "
                     f"known: {', '.join(repr(e.spec) for e in entries)}")


def records() -> List[PretrainedWeights]:
    """Every record: keras.applications' (both files of each pair), then torchvision's and timm's."""
    keras_records = [entry.record(top) for entry in KERAS_APPLICATIONS.values() for top in (True, False)]
    return keras_records + [entry for entries in TORCH.values() for entry in entries]


def pretrained_sources(name: str) -> str:
    """The README's "pretrained weights" cell for registered model ``name`` (whose keras.applications weights key,
    if any, is its name)."""
    torch_sources = ", ".join(source for source in SOURCES
                              if any(entry.source == source for entry in TORCH.get(name, ())))
    if name in KERAS_LAYOUT_RESNETS:
        return f"keras.applications; {torch_sources} into `ResNet({name[6:]}, layout=\"torchvision\")`"
    cells = ["keras.applications"] if name in KERAS_APPLICATIONS else []
    cells += [torch_sources] if torch_sources else []
    return ", ".join(cells) or "-"
