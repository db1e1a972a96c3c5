"""Pretrained weights: the files keras.applications publishes, for the models whose architecture is the same as theirs.

The files' records (URL, MD5, the input they expect) are :mod:`keras_convnets.models.pretrained`'s.
``weights`` everywhere is ``None`` (random init), ``"imagenet"``, or a path to a local weights file (a Keras 3
``.weights.h5``, or a legacy ``.h5`` such as keras.applications' own files, matched by layer order). PyTorch
checkpoints -- ``"torchvision"``, ``"timm:<tag>"`` or a ``.pth`` / ``.safetensors`` file, told apart by content -- are
:mod:`keras_convnets.models.torch_weights`'.
"""

import os
from typing import Any, Optional

from keras_convnets.models import pretrained, torch_weights
from keras_convnets.models.backend import keras
from keras_convnets.models.checkpoints import WeightsUnavailableError, checkpoint_format

#: keras.applications' files by weights key: :data:`keras_convnets.models.pretrained.KERAS_APPLICATIONS`.
PUBLISHED = pretrained.KERAS_APPLICATIONS


def check_argument(weights: Any, weights_name: Optional[str], model_name: Optional[str] = None,
                   architecture: Any = None) -> None:
    """Raises a ValueError naming what ``weights`` accepts, before anything is built. ``weights_name``: the
    registered weights key of the architecture being built (None if it has none); ``model_name``: for the message;
    ``architecture``: what a torchvision / timm source is looked up by."""
    if weights is None:
        return
    if pretrained.is_named_source(weights):
        pretrained.published_checkpoint(torch_weights.checkpoint_name(architecture, weights), weights)
        return
    if weights == "imagenet":
        if weights_name not in PUBLISHED:
            published = ", ".join(sorted(PUBLISHED))
            raise ValueError(f"weights='imagenet' is published only for {published}; "
                             f"{model_name or weights_name!r} has none. Pass weights=None or a path to a weights "
                             "file.")
        return
    if not isinstance(weights, (str, os.PathLike)) or not os.path.exists(weights):
        raise ValueError("weights must be None, 'imagenet', or the path to an existing weights file (Keras "
                         ".weights.h5 / .h5, PyTorch .pth, .safetensors), or 'torchvision' / 'timm[:tag]'; "
                         f"got {weights!r}")


def fetch(weights_name: str, include_top: bool) -> str:
    """Downloads (or finds in the Keras cache) a published weights file, verified by MD5, and returns its path."""
    entry = PUBLISHED[weights_name]
    url = entry.url(include_top)
    try:
        return keras.utils.get_file(entry.file_name(include_top), url, cache_subdir="models",
                                    file_hash=entry.md5(include_top))
    except Exception as error:  # urllib, hash mismatch, ... : all mean "no usable file here"
        raise WeightsUnavailableError(
            f"could not download the ImageNet weights for '{weights_name}' from {url} ({error}). "
            f"Download that file on a machine with internet and pass its local path as weights=..., or place it "
            f"in ~/.keras/models/.") from error


def load(model, weights: Any, weights_name: Optional[str], include_top: bool, architecture: Any = None) -> None:
    """Loads ``weights`` (already checked) into ``model`` (of ``architecture``: how torchvision / timm sources are
    found)."""
    if weights is None:
        return
    if pretrained.is_named_source(weights) or (
            weights != "imagenet" and os.path.isfile(weights) and checkpoint_format(weights)):
        torch_weights.load_pretrained(model, weights, architecture)
        return
    path = fetch(weights_name, include_top) if weights == "imagenet" else os.fspath(weights)
    model.load_weights(path)

__all__ = ["WeightsUnavailableError"]
