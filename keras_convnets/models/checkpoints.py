"""PyTorch checkpoint files (torchvision, timm), read: the format told by content, the tensors as numpy arrays.

``.safetensors`` files are read with the ``safetensors`` package (numpy only). ``.pth`` / ``.pt`` files are pickles
and need PyTorch (``pip install "keras-convnets[torch]"``), imported only when such a file is given. Mapping the
tensors onto a model is :mod:`keras_convnets.models.torch_weights`'; the name map is each family's.

Imports nothing of the package and no TensorFlow.
"""

import json
import os
import struct
import zipfile
from typing import Dict, Optional

import numpy as np

TORCH_EXTRA = 'pip install "keras-convnets[torch]"'


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model: a tensor is missing, unexpected or of the wrong shape."""


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


class WeightsUnavailableError(OSError):
    """The published weights could not be downloaded (e.g. no internet)."""
