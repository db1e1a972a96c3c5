"""FLOPs of a built Keras model, in the torchvision convention: multiply-adds (MACs) of the convolutions (grouped and
depthwise included) and dense layers, one forward pass of one image. Batch norm, activations, pooling, additions and
biases are not counted, so CIFAR ResNet-20 is ~41 MMac at 32x32 and DenseNet-121 ~2.9 GMac at 224x224.

Counted from the layers' kernels and output shapes, so it works for any model built from Keras layers (Keras 3 or
tf-keras), nested models included:

* convolution: ``output positions x kernel size`` (the kernel already holds ``in_channels / groups``);
* depthwise convolution: ``output positions x kernel size`` (the kernel holds ``in_channels x depth_multiplier``);
* separable convolution: its depthwise part at the output positions plus its pointwise part;
* dense: ``kernel size x`` the positions it is applied at (1 for a ``(batch, features)`` input).
"""

import math

from keras_convnets.models.backend import keras
from keras_convnets.models.recompute import RecomputedConv


def _output_shape(layer):
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError, RuntimeError):  # tf-keras, or a layer called more than once
        return tuple(layer.output_shape)


def _positions(shape, data_format, rank):
    """Number of output positions (spatial elements) of one image, from a ``(batch, ...)`` shape."""
    spatial = shape[1:1 + rank] if data_format == "channels_first" else shape[-1 - rank:-1]
    if any(s is None for s in spatial):
        raise ValueError(f"FLOPs need a static input size; got output shape {shape}. Build the model with an "
                         "input_shape whose height and width are given.")
    return math.prod(int(s) for s in spatial)


def _kernel_size(variable):
    return math.prod(int(s) for s in variable.shape)


def _conv_flops(layer, output_shape) -> int:
    positions = _positions(output_shape, layer.data_format, len(layer.kernel_size))
    if "Transpose" in type(layer).__name__:
        # Each input position is multiplied by the whole kernel: positions of the input, not the output.
        positions = positions // math.prod(layer.strides)
    return positions * _kernel_size(layer.kernel)


def layer_flops(layer) -> int:
    """Multiply-adds of one call of ``layer`` on one example (0 for layers without convolution or dense maths)."""
    conv = keras.layers
    if isinstance(layer, keras.Model):
        return count_flops(layer)
    if isinstance(layer, conv.SeparableConv2D) or type(layer).__name__ in ("SeparableConv1D", "SeparableConv2D"):
        shape = _output_shape(layer)
        positions = _positions(shape, layer.data_format, len(layer.kernel_size))
        return positions * (_kernel_size(layer.depthwise_kernel) + _kernel_size(layer.pointwise_kernel))
    if isinstance(layer, conv.DepthwiseConv2D) or type(layer).__name__ in ("DepthwiseConv1D", "DepthwiseConv2D"):
        shape = _output_shape(layer)
        kernel = getattr(layer, "depthwise_kernel", None)  # tf-keras's name; Keras 3 calls it `kernel`
        kernel = layer.kernel if kernel is None else kernel
        return _positions(shape, layer.data_format, len(layer.kernel_size)) * _kernel_size(kernel)
    if isinstance(layer, RecomputedConv):  # memory-efficient DenseNet: its conv's output is the wrapper's
        return _conv_flops(layer.conv, _output_shape(layer))
    if isinstance(layer, (conv.Conv1D, conv.Conv2D, conv.Conv3D, conv.Conv1DTranspose, conv.Conv2DTranspose,
                          conv.Conv3DTranspose)):
        return _conv_flops(layer, _output_shape(layer))
    if isinstance(layer, conv.Dense):
        shape = _output_shape(layer)
        return math.prod(int(s) for s in shape[1:-1]) * _kernel_size(layer.kernel)
    if hasattr(layer, "layers"):  # a nested model or a layer made of layers
        return sum(layer_flops(inner) for inner in layer.layers)
    return 0


def count_flops(model) -> int:
    """Multiply-adds of one forward pass of ``model`` on one example (torchvision's "FLOPs")."""
    return sum(layer_flops(layer) for layer in model.layers)


def format_flops(flops: float) -> str:
    """``4.1G``, ``40.6M``: the usual short form of a multiply-add count."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.{1 if flops / scale >= 10 else 2}f}{unit}"
    return str(int(flops))


__all__ = ["count_flops", "layer_flops", "format_flops"]
