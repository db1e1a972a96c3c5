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
so one mapping per family serves both: each family's ``torch_key`` (:mod:`keras_convnets.models.resnet`,
:mod:`keras_convnets.models.densenet`), chosen through the model's architecture (``Architecture.torch_key_map``).
Loading is strict: the first tensor that is missing, unexpected or of the wrong shape
is named in a :class:`CheckpointMismatchError` and nothing is assigned. ``skip_mismatch=True`` loads the backbone
and skips a classifier of another number of classes (with a warning saying so).

Files are read by :mod:`keras_convnets.models.checkpoints`; the ``convert`` command is
:mod:`keras_convnets.serving.convert`.
"""

import dataclasses
import hashlib
import os
import re
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from keras_convnets.models.backend import keras
from keras_convnets.models.checkpoints import CheckpointMismatchError, WeightsUnavailableError, read_checkpoint
from keras_convnets.models.pretrained import TORCH as PUBLISHED  # the torchvision / timm records, by model name
from keras_convnets.models.pretrained import Preprocessing, is_named_source, published_checkpoint

#: PyTorch's BatchNorm2d default, used by every torchvision and timm model we map.
TORCH_BN_EPSILON = 1e-5


# ---------------------------------------------------------------------------------------------------- named sources

#: torchvision's / timm's model name -> our architecture its checkpoints fit; each family module registers its own
#: (:func:`register_architectures`), so a source is found by architecture, not by a model's display name.
_ARCHITECTURES: Dict[str, Any] = {}


def register_architectures(architectures: Dict[str, Any]) -> None:
    """Called by a family module: ``{torchvision model name: architecture}`` of the checkpoints it takes."""
    _ARCHITECTURES.update(architectures)


def checkpoint_name(architecture, weights: str) -> str:
    """The torchvision / timm model name whose published checkpoints fit ``architecture`` (found by comparing
    architectures, so a model's display name does not matter), or a ValueError saying what does fit."""
    name = next((name for name, arch in _ARCHITECTURES.items() if arch == architecture), None)
    if name is not None:
        return name
    try:
        key_map(architecture)
    except ValueError as error:  # the family says why (a keras.applications-layout ResNet: which layout to build)
        raise ValueError(f"weights={weights!r}: {error}") from error
    raise ValueError(f"weights={weights!r}: torchvision and timm publish checkpoints only for "
                     f"{', '.join(sorted(PUBLISHED))} (torchvision layout); this architecture has none")


def key_map(architecture) -> Optional[Callable[[str], Optional[str]]]:
    """``architecture``'s map from our layer names to torchvision's / timm's parameter prefixes (its family's
    ``torch_key_map``), None if torchvision and timm have no counterpart of it; a ValueError saying what to build
    instead for an architecture of the right family in another layout."""
    return architecture.torch_key_map()


def fetch(weights_name: str, weights: str) -> str:
    """Downloads (or finds in the Keras cache, ~/.keras/models) a published checkpoint and returns its path."""
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


PREPROCESSING_ATTRIBUTE = "pretrained_preprocessing"


def preprocessing_of(model) -> Optional[Preprocessing]:
    """The :class:`Preprocessing` recorded on a model loaded from a named source (None otherwise)."""
    return getattr(model, PREPROCESSING_ATTRIBUTE, None)


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


# ---------------------------------------------------------------------------------------------- loading

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


#: The attribute :func:`keras_convnets.models.application.build_model` records a model's architecture in: how
#: :func:`load_checkpoint` finds the family's name map.
ARCHITECTURE_ATTRIBUTE = "convnet_architecture"


def _mapper(model, architecture=None) -> Callable[[str], Optional[str]]:
    """The name mapping of ``model``'s family, chosen through its architecture, or a ValueError for a model no
    torchvision/timm checkpoint fits."""
    architecture = architecture if architecture is not None else getattr(model, ARCHITECTURE_ATTRIBUTE, None)
    mapper = key_map(architecture) if architecture is not None else None
    if mapper is None:
        raise ValueError(f"'{model.name}' has no torchvision/timm counterpart: checkpoints load into the torchvision-"
                         "layout ImageNet ResNets / ResNeXts / Wide ResNet-50-2 and the ImageNet DenseNets, built by "
                         "keras_convnets")
    return mapper


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


def _leftover_keys(state, used, head: Optional[str], has_head: bool, origin: str, model_name: str) -> List[str]:
    """The keys of ``state`` that no layer took (not in ``used``), to skip: those of the checkpoint's classifier
    (``head``) when the model has none (``has_head`` False). Any other is a :class:`CheckpointMismatchError`."""
    skipped = []
    for key in state:
        if key in used:
            continue
        if not has_head and key.split(".")[0] == head:
            skipped.append(key)
            continue
        raise CheckpointMismatchError(f"{origin} has a tensor '{key}' that no layer of '{model_name}' takes: not a "
                                      "checkpoint of this architecture (or of another depth)")
    return skipped


def load_state(model, state: Dict[str, np.ndarray], *, skip_mismatch: bool = False,
               source_epsilon: float = TORCH_BN_EPSILON, origin: str = "the checkpoint",
               architecture=None) -> LoadReport:
    """Assigns a torchvision/timm state dict (numpy arrays by name) to ``model``, all or nothing.

    Raises :class:`CheckpointMismatchError` naming the first tensor that is missing, of the wrong shape, or left
    over. The checkpoint's classifier is skipped, not an error, when the model has none (``include_top=False``);
    with ``skip_mismatch=True`` also when its number of classes differs from the model's (a warning says so).
    ``architecture``: the model's (default: the one :func:`~keras_convnets.models.application.build_model` recorded
    on it), whose family maps the names.
    """
    mapper = _mapper(model, architecture)
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
    skipped.extend(_leftover_keys(state, used, head, has_head, origin, model.name))
    for layer, values in assignments:
        layer.set_weights(values)
    return LoadReport(sum(len(values) for _, values in assignments), skipped)


def load_checkpoint(model, path, *, skip_mismatch: bool = False, architecture=None) -> LoadReport:
    """Loads a torchvision / timm checkpoint file (``.pth``, ``.pt``, ``.safetensors``) into ``model``; see
    :func:`load_state`."""
    return load_state(model, read_checkpoint(path), skip_mismatch=skip_mismatch, origin=os.fspath(path),
                      architecture=architecture)


def load_pretrained(model, weights, architecture) -> LoadReport:
    """The ``weights=`` path of every factory for a named source or a checkpoint file; records the expected
    preprocessing on the model for a named source."""
    if is_named_source(weights):
        weights_name = checkpoint_name(architecture, weights)
        entry = published_checkpoint(weights_name, weights)
        report = load_checkpoint(model, fetch(weights_name, weights), architecture=architecture)
        setattr(model, PREPROCESSING_ATTRIBUTE, entry.preprocessing)
        return report
    return load_checkpoint(model, weights, architecture=architecture)


__all__ = ["load_checkpoint", "preprocessing_of", "CheckpointMismatchError"]
