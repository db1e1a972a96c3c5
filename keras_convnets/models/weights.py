"""Pretrained weights: the files keras.applications publishes, for the models whose architecture is the same as theirs.

``weights`` everywhere is ``None`` (random init), ``"imagenet"``, or a path to a local weights file (a Keras 3
``.weights.h5``, or a legacy ``.h5`` such as keras.applications' own files, matched by layer order). PyTorch
checkpoints -- ``"torchvision"``, ``"timm:<tag>"`` or a ``.pth`` / ``.safetensors`` file, told apart by content -- are
:mod:`keras_convnets.models.torch_weights`'.
"""

import dataclasses
import hashlib
import os
from typing import Any, Optional

from keras_convnets.models import torch_weights
from keras_convnets.models.backend import keras
from keras_convnets.models.checkpoints import WeightsUnavailableError, checkpoint_format

_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclasses.dataclass(frozen=True)
class PublishedWeights:
    """One keras.applications weights file pair: with and without the classifier, each checked by its MD5."""

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


#: The hashes are keras.applications' published ones (keras/src/applications/resnet.py, densenet.py).
PUBLISHED = {
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
    for key, entry in PUBLISHED.items():
        if name in (entry.file_name(True), entry.file_name(False)):
            return key
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    md5 = digest.hexdigest()
    return next((key for key, entry in PUBLISHED.items() if md5 in (entry.top_md5, entry.notop_md5)), None)


def check_argument(weights: Any, weights_name: Optional[str], model_name: Optional[str] = None,
                   architecture: Any = None) -> None:
    """Raises a ValueError naming what ``weights`` accepts, before anything is built. ``weights_name``: the
    registered weights key of the architecture being built (None if it has none); ``model_name``: for the message;
    ``architecture``: what a torchvision / timm source is looked up by."""
    if weights is None:
        return
    if torch_weights.is_named_source(weights):
        torch_weights.published_checkpoint(torch_weights.checkpoint_name(architecture, weights), weights)
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
    if torch_weights.is_named_source(weights) or (
            weights != "imagenet" and os.path.isfile(weights) and checkpoint_format(weights)):
        torch_weights.load_pretrained(model, weights, architecture)
        return
    path = fetch(weights_name, include_top) if weights == "imagenet" else os.fspath(weights)
    model.load_weights(path)

__all__ = ["WeightsUnavailableError"]
