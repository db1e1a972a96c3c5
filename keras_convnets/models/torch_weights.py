"""PyTorch checkpoints (torchvision, timm) loaded into our models, tensor for tensor.

Our torchvision-layout ResNets (``ResNet18/34``, ``ResNeXt50_32x4d``, ``ResNeXt101_32x8d``, ``WideResNet50_2`` and
``ResNet(50/101/152, layout="torchvision")``) and our ImageNet DenseNets compute the same function as torchvision's:
same layers, same padding (explicit symmetric zero padding before every strided conv and the stem's max-pool, as
PyTorch pads; Keras' ``"same"`` would pad only bottom/right at stride 2; the max-pool reads ReLU outputs, so zeros
act as PyTorch's -inf), BN in inference form. A checkpoint only needs its names mapped onto ours and its tensors
transposed:

* conv weight ``(out, in / groups, kh, kw)`` -> Keras kernel ``(kh, kw, in / groups, out)`` (grouped convs too);
* BN ``weight, bias, running_mean, running_var`` -> ``gamma, beta, moving_mean, moving_variance``. PyTorch's BN eps
  is 1e-5; a layer of ours with another eps (keras.applications' 1.001e-5 in the DenseNets) gets the difference
  folded into its moving variance, so ``var + eps`` and the outputs are the checkpoint's exactly, the layer's
  config stays keras.applications', and a ``.weights.h5`` written afterwards reloads into a freshly built model;
* classifier ``(classes, features)`` -> Dense kernel ``(features, classes)``.

timm's ResNets and DenseNets use torchvision's parameter names (timm loads torchvision's files into them strictly),
so one mapping serves both. Loading is strict: the first tensor that is missing, unexpected or of the wrong shape
is named in a :class:`CheckpointMismatchError` and nothing is assigned. ``skip_mismatch=True`` loads the backbone
and skips a classifier of another number of classes (with a warning saying so).

``.safetensors`` files are read with the ``safetensors`` package (numpy only). ``.pth`` / ``.pt`` files are pickles
and need PyTorch (``pip install "keras-convnets[torch]"``), imported only when such a file is given.
"""

import dataclasses
import hashlib
import json
import os
import re
import struct
import warnings
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

#: PyTorch's BatchNorm2d default, used by every torchvision and timm model we map.
TORCH_BN_EPSILON = 1e-5
TORCH_EXTRA = 'pip install "keras-convnets[torch]"'
#: ImageNet channel statistics of pixels in [0, 1], used by torchvision and timm for all the weights below.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model: a tensor is missing, unexpected or of the wrong shape."""


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What a set of pretrained weights expects at inference: resize the shorter side to ``resize_size`` with
    ``interpolation``, center-crop ``input_size``, scale to [0, 1], subtract ``mean`` and divide by ``std`` per
    channel. (``mean``/``std`` make it usable wherever a DatasetSpec's statistics are, e.g.
    :func:`keras_convnets.training.data.preprocessing_model`.)"""

    input_size: int = 224
    resize_size: int = 256
    interpolation: str = "bilinear"
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD

    @property
    def crop_fraction(self) -> float:
        return self.input_size / self.resize_size


def _timm_crop(crop_pct: float, input_size: int = 224, interpolation: str = "bilinear") -> Preprocessing:
    """timm's ``crop_pct``: the shorter side is resized to ``floor(input_size / crop_pct)``."""
    return Preprocessing(input_size, int(input_size / crop_pct), interpolation)


@dataclasses.dataclass(frozen=True)
class PublishedCheckpoint:
    """One published checkpoint: where it is, how to check it, what input it expects.

    ``sha256_prefix``: torchvision names its files after the first hex digits of their SHA-256 (checked after the
    download, as torch.hub does); timm's Hugging Face files carry no hash we could record offline (None).
    """

    source: str          # "torchvision" or "timm"
    tag: str             # "v1" / "v2", or timm's pretrained tag ("tv_in1k", "a1_in1k", ...)
    url: str
    file_name: str       # the name it is cached under (~/.keras/models/)
    sha256_prefix: Optional[str]
    preprocessing: Preprocessing

    @property
    def spec(self) -> str:
        return self.source if self.source == "torchvision" and self.tag == "v1" else f"{self.source}:{self.tag}"


_TORCHVISION_URL = "https://download.pytorch.org/models/"


def _torchvision(file_name: str, tag: str = "v1") -> PublishedCheckpoint:
    """torchvision's ``IMAGENET1K_V1`` (resize 256, crop 224) or ``IMAGENET1K_V2`` (resize 232) file."""
    prefix = re.search(r"-([0-9a-f]{8})\.pth$", file_name).group(1)
    preprocessing = Preprocessing(224, 256 if tag == "v1" else 232, "bilinear")
    return PublishedCheckpoint("torchvision", tag, _TORCHVISION_URL + file_name, file_name, prefix, preprocessing)


def _timm(model: str, tag: str, preprocessing: Preprocessing) -> PublishedCheckpoint:
    return PublishedCheckpoint("timm", tag, f"https://huggingface.co/timm/{model}.{tag}/resolve/main/model.safetensors",
                               f"timm_{model}.{tag}.safetensors", None, preprocessing)


# timm's configurations: torchvision-trained ResNets crop 0.875 bilinear; its DenseNets and its own recipes bicubic
# ("a1"/"a1h": ResNet strikes back, crop 0.95; "racm", "ra": crop 0.875).
_TIMM_TV = _timm_crop(0.875)
_TIMM_TV_DENSENET = _timm_crop(0.875, interpolation="bicubic")
_TIMM_RSB = _timm_crop(0.95, interpolation="bicubic")
_TIMM_RA = _timm_crop(0.875, interpolation="bicubic")

#: Model name -> its published checkpoints, default first. URLs and file names are torchvision's own
#: (torchvision/models/resnet.py, densenet.py) and timm's Hugging Face hub names.
PUBLISHED: Dict[str, List[PublishedCheckpoint]] = {
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

#: Registered factories in keras.applications' layout whose torchvision / timm counterpart is our torchvision layout.
_KERAS_LAYOUT_RESNETS = ("resnet50", "resnet101", "resnet152")
SOURCES = ("torchvision", "timm")


# ---------------------------------------------------------------------------------------------------- named sources

def is_named_source(weights) -> bool:
    """True for ``"torchvision"``, ``"torchvision:v2"``, ``"timm"``, ``"timm:<tag>"``."""
    return isinstance(weights, str) and weights.split(":", 1)[0] in SOURCES


def published_checkpoint(weights_name: str, weights: str) -> PublishedCheckpoint:
    """The table entry ``weights`` names for model ``weights_name``, or a ValueError listing what exists."""
    source, _, tag = weights.partition(":")
    entries = [entry for entry in PUBLISHED.get(weights_name, ()) if entry.source == source]
    if not entries:
        known = ", ".join(sorted(PUBLISHED))
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


def _architectures() -> Dict[str, Any]:
    """torchvision's model name -> our architecture that its checkpoints fit (built on first use: the family modules
    import this one through the builder core)."""
    from keras_convnets.models.densenet import imagenet_densenet
    from keras_convnets.models.resnet import imagenet_resnet

    resnets = {f"resnet{depth}": imagenet_resnet(depth) for depth in (18, 34, 50, 101, 152)}
    return {**resnets, "resnext50_32x4d": imagenet_resnet(50, groups=32, base_width=4),
            "resnext101_32x8d": imagenet_resnet(101, groups=32, base_width=8),
            "wide_resnet50_2": imagenet_resnet(50, base_width=128),
            **{f"densenet{depth}": imagenet_densenet(depth) for depth in (121, 161, 169, 201)}}


def checkpoint_name(architecture, weights: str) -> str:
    """The torchvision / timm model name whose published checkpoints fit ``architecture`` (found by comparing
    architectures, so a model's display name does not matter), or a ValueError saying what does fit."""
    from keras_convnets.models.resnet import imagenet_resnet

    name = next((name for name, arch in _architectures().items() if arch == architecture), None)
    if name is not None:
        return name
    keras_layout = next((depth for depth in (50, 101, 152) if imagenet_resnet(depth, "keras") == architecture), None)
    if keras_layout:
        raise ValueError(f"weights={weights!r}: ResNet-{keras_layout} here is in keras.applications' layout (conv "
                         "biases, stride on the first 1x1 conv), which no torchvision/timm checkpoint fits; build "
                         f"keras_convnets.ResNet({keras_layout}, layout=\"torchvision\") for them")
    raise ValueError(f"weights={weights!r}: torchvision and timm publish checkpoints only for "
                     f"{', '.join(sorted(PUBLISHED))} (torchvision layout); this architecture has none")


def fetch(weights_name: str, weights: str) -> str:
    """Downloads (or finds in the Keras cache, ~/.keras/models) a published checkpoint and returns its path."""
    from keras_convnets.models.backend import keras
    from keras_convnets.models.weights import WeightsUnavailableError

    entry = published_checkpoint(weights_name, weights)
    try:
        path = keras.utils.get_file(entry.file_name, entry.url, cache_subdir="models")
    except Exception as error:  # urllib, interrupted download ...: all mean "no usable file here"
        raise WeightsUnavailableError(
            f"could not download the {entry.spec} weights for '{weights_name}' from {entry.url} ({error}). "
            f"Download that file on a machine with internet and pass its local path as weights=..., or place it "
            f"in ~/.keras/models/{entry.file_name}.") from error
    if entry.sha256_prefix and not _sha256(path).startswith(entry.sha256_prefix):
        raise WeightsUnavailableError(f"{path} is not {entry.url}: its SHA-256 does not start with "
                                      f"{entry.sha256_prefix}; delete it and download again")
    return path


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pretrained_sources(name: str) -> str:
    """The README's "pretrained weights" cell for registered model ``name``."""
    from keras_convnets.models.weights import PUBLISHED as KERAS_PUBLISHED

    torch_sources = ", ".join(source for source in SOURCES
                              if any(entry.source == source for entry in PUBLISHED.get(name, ())))
    if name in _KERAS_LAYOUT_RESNETS:
        return f"keras.applications; {torch_sources} into `ResNet({name[6:]}, layout=\"torchvision\")`"
    cells = (["keras.applications"] if name in KERAS_PUBLISHED else []) + ([torch_sources] if torch_sources else [])
    return ", ".join(cells) or "-"


PREPROCESSING_ATTRIBUTE = "pretrained_preprocessing"


def preprocessing_of(model) -> Optional[Preprocessing]:
    """The :class:`Preprocessing` recorded on a model loaded from a named source (None otherwise)."""
    return getattr(model, PREPROCESSING_ATTRIBUTE, None)


# ------------------------------------------------------------------------------------------------- reading files

def checkpoint_format(path) -> Optional[str]:
    """``"safetensors"`` or ``"torch"`` (a zip or legacy pickle from ``torch.save``) by content; None otherwise
    (a Keras file, left to ``model.load_weights``)."""
    with open(path, "rb") as f:
        head = f.read(9)
        size = os.fstat(f.fileno()).st_size
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                return "torch" if any(n.endswith("data.pkl") for n in archive.namelist()) else None
        except zipfile.BadZipFile:
            return "torch"  # a zip cut short: only torch.save writes the .pth files that reach us this way
    if head[:1] == b"\x80":
        return "torch"      # pickle protocol 2+: torch.save's legacy format
    if len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= size:
        return "safetensors"
    return None


def _read_safetensors(path) -> Dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as error:
        raise CheckpointMismatchError(f"cannot read {path} as a safetensors checkpoint (truncated or corrupt?): "
                                      f"{error}") from error


def _read_torch(path) -> Dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as error:
        raise ImportError(f"{path} is a PyTorch pickle (.pth/.pt), which needs PyTorch to read: {TORCH_EXTRA}, "
                          "or convert it to .safetensors") from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip / pickle / unpickler errors of a truncated or foreign file
        raise CheckpointMismatchError(f"cannot read {path} as a PyTorch checkpoint (truncated or corrupt?): "
                                      f"{' '.join(str(error).split())[:200]}") from error
    for key in ("state_dict", "model"):  # training checkpoints wrap the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f"{path} holds a {type(state).__name__}, not a state dict")
    return {key: value.detach().float().numpy() for key, value in state.items() if hasattr(value, "detach")}


def read_checkpoint(path) -> Dict[str, np.ndarray]:
    """A torch or safetensors checkpoint's tensors as float32 numpy arrays, by parameter name."""
    kind = checkpoint_format(path)
    if kind is None:
        raise CheckpointMismatchError(f"{path} is neither a safetensors nor a PyTorch checkpoint")
    tensors = _read_safetensors(path) if kind == "safetensors" else _read_torch(path)
    return {key: np.asarray(value, np.float32) for key, value in tensors.items()}


# torchvision's pre-2019 DenseNet files name a dense layer's modules "norm.1", "conv.2" (torchvision renames them
# when loading, so must we).
_LEGACY_DENSE_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.\w+)$")


def _normalise(state: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue  # a training counter, not a parameter
        match = _LEGACY_DENSE_KEY.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


# ---------------------------------------------------------------------------------------------- name mapping

def _resnet_name(layer: str) -> Optional[str]:
    """torchvision / timm name of one of our torchvision-layout ResNet layers."""
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


def _densenet_name(layer: str) -> Optional[str]:
    """torchvision / timm name of one of our ImageNet DenseNet layers."""
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


def _weighted_layers(model) -> List:
    """The model's layers that hold weights, in order, including the BN and conv inside a memory-efficient
    DenseNet's recomputed blocks."""
    found = []
    for layer in model.layers:
        inner = [getattr(layer, attr) for attr in ("norm", "conv") if hasattr(getattr(layer, attr, None), "weights")]
        for candidate in inner or [layer]:
            if candidate.weights:
                found.append(candidate)
    return found


def _mapper(model) -> Callable[[str], Optional[str]]:
    """The name mapping of ``model``'s family, or a ValueError for a model no torchvision/timm checkpoint fits."""
    names = {layer.name for layer in _weighted_layers(model)}
    if "conv1_conv" in names and any(re.fullmatch(r"conv\d_block\d+_0_bn", n) for n in names) \
            and "bn" in names:
        return _densenet_name
    if "post_bn" not in names and any(re.fullmatch(r"conv\d_block\d+_1_conv", n) for n in names):
        if model.get_layer("conv1_conv").use_bias:
            raise ValueError(f"'{model.name}' is in keras.applications' layout (conv biases, stride on the first "
                             "1x1 conv), which no torchvision/timm checkpoint fits; build "
                             "keras_convnets.ResNet(depth, layout=\"torchvision\") for torchvision's / timm's weights")
        return _resnet_name
    raise ValueError(f"'{model.name}' has no torchvision/timm counterpart: checkpoints load into the torchvision-"
                     "layout ImageNet ResNets / ResNeXts / Wide ResNet-50-2 and the ImageNet DenseNets")


def _layer_tensors(layer, prefix: str, state, epsilon: float) -> List[Tuple[str, Optional[np.ndarray]]]:
    """``(checkpoint key, array in our layout or None if missing)`` for each weight of ``layer``, in its order."""
    kind = type(layer).__name__

    def get(suffix, transform=lambda a: a):
        key = f"{prefix}.{suffix}"
        return key, (transform(state[key]) if key in state else None)

    if kind == "Conv2D":
        tensors = [get("weight", lambda a: a.transpose(2, 3, 1, 0))]
        return tensors + ([get("bias")] if layer.use_bias else [])
    if kind == "Dense":
        return [get("weight", lambda a: a.T), get("bias")]
    if "BatchNormalization" in kind:
        shift = epsilon - layer.epsilon   # var + eps(ours) == running_var + eps(checkpoint)
        tensors = ([get("weight")] if layer.scale else []) + ([get("bias")] if layer.center else [])
        return tensors + [get("running_mean"), get("running_var", lambda a: (a.astype(np.float64) + shift)
                                                   .astype(np.float32))]
    raise ValueError(f"layer '{layer.name}' ({kind}) has no torchvision/timm counterpart")


@dataclasses.dataclass
class LoadReport:
    """What :func:`load_checkpoint` did: tensors loaded, and checkpoint keys skipped (with why)."""

    loaded: int
    skipped: List[str]


def load_state(model, state: Dict[str, np.ndarray], *, skip_mismatch: bool = False,
               source_epsilon: float = TORCH_BN_EPSILON, origin: str = "the checkpoint") -> LoadReport:
    """Assigns a torchvision/timm state dict (numpy arrays by name) to ``model``, all or nothing.

    Raises :class:`CheckpointMismatchError` naming the first tensor that is missing, of the wrong shape, or left
    over. The checkpoint's classifier is skipped, not an error, when the model has none (``include_top=False``);
    with ``skip_mismatch=True`` also when its number of classes differs from the model's (a warning says so).
    """
    mapper = _mapper(model)
    state = _normalise(state)
    head = mapper("predictions")
    has_head = any(layer.name == "predictions" for layer in model.layers)
    assignments, used, skipped = [], set(), []
    for layer in _weighted_layers(model):
        prefix = mapper(layer.name)
        if prefix is None:
            raise CheckpointMismatchError(f"our layer '{layer.name}' has no counterpart in {origin}")
        tensors = _layer_tensors(layer, prefix, state, source_epsilon)
        targets = [tuple(w.shape) for w in layer.get_weights()]
        used.update(key for key, _ in tensors)
        for (key, value), target in zip(tensors, targets):
            if value is None:
                raise CheckpointMismatchError(f"{origin} has no tensor '{key}' (for our layer '{layer.name}'): "
                                              f"not a checkpoint of this architecture")
            if value.shape != target:
                if layer.name == "predictions" and skip_mismatch:
                    break
                hint = " (the classifier: pass include_top=False, or skip_mismatch=True to load_checkpoint)" \
                    if layer.name == "predictions" else ""
                raise CheckpointMismatchError(
                    f"tensor '{key}' of {origin} has shape {tuple(state[key].shape)}, which does not fit our layer "
                    f"'{layer.name}' (needs {target} in Keras layout){hint}")
        else:
            assignments.append((layer, [value for _, value in tensors]))
            continue
        skipped.extend(key for key, _ in tensors)
        warnings.warn(f"skipped the classifier: '{head}.weight' of {origin} has {state[head + '.weight'].shape[0]} "
                      f"classes, the model {targets[-1][0]}; the backbone was loaded", stacklevel=2)
    for key in state:
        if key in used:
            continue
        if not has_head and key.split(".")[0] == head:
            skipped.append(key)
            continue
        raise CheckpointMismatchError(f"{origin} has a tensor '{key}' that no layer of '{model.name}' takes: not a "
                                      "checkpoint of this architecture (or of another depth)")
    for layer, values in assignments:
        layer.set_weights(values)
    return LoadReport(sum(len(values) for _, values in assignments), skipped)


def load_checkpoint(model, path, *, skip_mismatch: bool = False) -> LoadReport:
    """Loads a torchvision / timm checkpoint file (``.pth``, ``.pt``, ``.safetensors``) into ``model``; see
    :func:`load_state`."""
    return load_state(model, read_checkpoint(path), skip_mismatch=skip_mismatch, origin=os.fspath(path))


def load_pretrained(model, weights, architecture) -> LoadReport:
    """The ``weights=`` path of every factory for a named source or a checkpoint file; records the expected
    preprocessing on the model for a named source."""
    if is_named_source(weights):
        weights_name = checkpoint_name(architecture, weights)
        entry = published_checkpoint(weights_name, weights)
        report = load_checkpoint(model, fetch(weights_name, weights))
        setattr(model, PREPROCESSING_ATTRIBUTE, entry.preprocessing)
        return report
    return load_checkpoint(model, weights)


# ------------------------------------------------------------------------------------------------------ convert

def build_for_checkpoint(name: str, **kwargs):
    """Registered model ``name`` in the layout torchvision/timm checkpoints fit: the registry's factory, except for
    ResNet-50/101/152, registered in keras.applications' layout, which are built with ``layout="torchvision"``."""
    from keras_convnets.models import registry, resnet

    info = registry.model_info(name)
    if info.name in _KERAS_LAYOUT_RESNETS:
        return resnet.ResNet(int(info.name[6:]), layout="torchvision", **kwargs)
    return info.build(**kwargs)


def convert(source, model_name: str, out: str, *, classes: Optional[int] = None,
            export_dir: Optional[str] = None) -> List[str]:
    """Writes the weights of checkpoint ``source`` (a file, or ``"torchvision"`` / ``"timm[:tag]"``) for
    registered model ``model_name`` to a Keras weights file ``out``; with ``classes`` other than the checkpoint's,
    the backbone only (a fresh classifier). ``export_dir``: also a SavedModel serving raw uint8 images in the view
    the weights expect (short side resized to ``resize_size`` with their interpolation, centre ``input_size`` crop,
    ImageNet normalisation in front; torchvision's 256 -> 224 bilinear for a file) for ``keras-convnets predict``.
    Returns what was done, in lines.
    """
    from keras_convnets.models.backend import KERAS_3
    from keras_convnets.models.registry import model_info

    suffix = ".weights.h5" if KERAS_3 else ".h5"
    if not str(out).endswith(suffix):
        raise ValueError(f"--out must end in {suffix} (a Keras weights file); got {out!r}")
    name = model_info(model_name).name
    kwargs = {} if classes is None else {"classes": classes}
    model = build_for_checkpoint(name, **kwargs)
    preprocessing = Preprocessing()
    if is_named_source(source):
        entry = published_checkpoint(name, source)
        preprocessing = entry.preprocessing
        source = fetch(name, source)
    elif not os.path.isfile(source):
        raise ValueError(f"SOURCE must be a checkpoint file or 'torchvision' / 'timm[:tag]'; got {source!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = load_checkpoint(model, source, skip_mismatch=classes is not None)
    lines = [str(w.message) for w in caught if "skipped the classifier" in str(w.message)]
    model.save_weights(out)
    layout = f" (load with keras_convnets.ResNet({name[6:]}, layout=\"torchvision\", weights=...))" \
        if name in _KERAS_LAYOUT_RESNETS else ""
    lines.append(f"wrote {out}: {report.loaded} tensors of {source} into {model.name}{layout}")
    if export_dir:
        from keras_convnets.models.imagenet import imagenet_class_names
        from keras_convnets.training.data import preprocessing_model
        from keras_convnets.training.export import export_saved_model

        size = preprocessing.input_size
        served = preprocessing_model(model, preprocessing, (size, size, 3))
        classes_out = model.output_shape[-1]
        names = imagenet_class_names() if classes is None and classes_out == 1000 else \
            [str(i) for i in range(classes_out)]
        export_saved_model(served, export_dir, names,
                           crop_fraction=preprocessing.crop_fraction, interpolation=preprocessing.interpolation)
        lines.append(f"saved model: {export_dir} (uint8 images of any size in, probabilities out; it resizes the "
                     f"short side to {preprocessing.resize_size} ({preprocessing.interpolation}) and centre-crops "
                     f"{size}x{size}, as the weights expect)")
    return lines

__all__ = ["load_checkpoint", "preprocessing_of", "CheckpointMismatchError"]
