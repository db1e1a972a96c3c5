"""The keras.applications contract shared by every builder: argument checks, the input, the head, the weights.

Every factory takes ``include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation,
name``. Unlike keras.applications, ``weights`` defaults to ``None`` (most of our models have no published weights
and nothing should download behind a user's back), and contradictory arguments raise instead of being ignored.
"""

import contextlib
import dataclasses
import functools
import sys

from keras_convnets.models import weights as weights_lib
from keras_convnets.models.backend import keras

POOLINGS = (None, "avg", "max")


def check_positive_int(argument, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{argument} must be a positive integer; got {value!r}")


def layer_config(base, *, data_format="channels_last", dtype=None, weight_decay=0.0, sync_bn=False):
    """``base`` (a family's LayerConfig) with the per-model options every factory takes, checked."""
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first'; got {data_format!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0; got {weight_decay!r}")
    return dataclasses.replace(base, data_format=data_format, dtype=dtype, weight_decay=float(weight_decay),
                               sync_bn=bool(sync_bn))


def check_dropout(dropout):
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a number in [0, 1); got {dropout!r}")


def check_head(include_top, weights, pooling, classes, weights_name):
    """Checks the head arguments against each other; each error names the argument and what it accepts."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be None, 'avg' or 'max'; got {pooling!r}")
    if include_top and pooling is not None:
        raise ValueError(f"pooling={pooling!r} applies only with include_top=False "
                         "(with include_top=True the model always ends in global average pooling)")
    check_positive_int("classes", classes)
    weights_lib.check_argument(weights, weights_name)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"classes must be 1000 with weights='imagenet' and include_top=True; got classes={classes}. "
                         "Use include_top=False to put your own classifier on the pretrained backbone.")


def check_input_shape(input_shape, *, min_size, config, require_rgb):
    """Checks a (H, W, C) shape (or (C, H, W) under channels_first); ``None`` sizes are allowed."""
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must have 3 entries (height, width, channels); got {input_shape!r}")
    height, width = input_shape[:2] if config.data_format == "channels_last" else input_shape[1:]
    channels = input_shape[-1] if config.data_format == "channels_last" else input_shape[0]
    if channels is None:
        raise ValueError(f"input_shape must give the channel count; got {input_shape!r}")
    check_positive_int("the input's channel count", channels)
    if require_rgb and channels != 3:
        raise ValueError(f"weights='imagenet' needs 3 input channels (RGB); got input_shape={tuple(input_shape)}")
    for size in (height, width):
        if size is not None and size < min_size:
            raise ValueError(f"input_shape {tuple(input_shape)} is smaller than this model can downsample: height "
                             f"and width must be at least {min_size}")


def _is_keras_tensor(value):
    try:
        return keras.backend.is_keras_tensor(value)
    except ValueError:  # tf-keras raises on non-tensors instead of answering False
        return False


def resolve_input(input_tensor, input_shape, *, default_size, min_size, config, require_rgb):
    """Returns ``(model_inputs, image_tensor)`` from the keras.applications ``input_tensor`` / ``input_shape``."""
    if input_tensor is not None:
        if not _is_keras_tensor(input_tensor):
            raise ValueError("input_tensor must be a Keras tensor (from keras.Input or a layer's output); "
                             f"got {type(input_tensor).__name__}")
        if input_shape is not None and tuple(input_shape) != tuple(input_tensor.shape[1:]):
            raise ValueError(f"input_shape {tuple(input_shape)} contradicts input_tensor's shape "
                             f"{tuple(input_tensor.shape[1:])}; pass one of them")
        check_input_shape(tuple(input_tensor.shape[1:]), min_size=min_size, config=config, require_rgb=require_rgb)
        return keras.utils.get_source_inputs(input_tensor), input_tensor
    if input_shape is None:
        input_shape = (default_size, default_size, 3) if config.data_format == "channels_last" \
            else (3, default_size, default_size)
    input_shape = tuple(input_shape)
    check_input_shape(input_shape, min_size=min_size, config=config, require_rgb=require_rgb)
    image = keras.Input(shape=input_shape, name="image")
    return image, image


def head(x, *, include_top, pooling, classes, classifier_activation, config):
    """keras.applications' top: ``avg_pool`` + ``predictions`` Dense, or the optional feature pooling.

    The classifier runs in float32 under a mixed-precision policy, so its softmax is numerically safe.
    """
    if include_top:
        x = config.global_pool("avg", name="avg_pool")(x)
        return config.dense(classes, classifier_activation, name="predictions", dtype="float32")(x)
    if pooling is not None:
        return config.global_pool(pooling, name=f"{pooling}_pool")(x)
    return x


def build(body, *, name, weights_name, include_top, weights, input_tensor, input_shape, pooling, classes,
          classifier_activation, default_size, min_size, config):
    """Checks the arguments, makes the input, applies ``body`` (tensor -> tensor) and the head, loads weights."""
    check_head(include_top, weights, pooling, classes, weights_name)
    inputs, image = resolve_input(input_tensor, input_shape, default_size=default_size, min_size=min_size,
                                  config=config, require_rgb=weights == "imagenet")
    outputs = head(body(image), include_top=include_top, pooling=pooling, classes=classes,
                   classifier_activation=classifier_activation, config=config)
    with _deep_graph_recursion():
        model = keras.Model(inputs, outputs, name=name)
    weights_lib.load(model, weights, weights_name, include_top)
    return model


@contextlib.contextmanager
def _deep_graph_recursion(limit=30_000):
    """Keras 3 and tf-keras both map a functional graph recursively, a few frames per layer: ResNet-1202's ~4,000
    layers sit at Python's default limit of 1,000 (whether it overflows depends on the caller's stack depth), so the
    limit is raised while a model is assembled, and restored after."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def variant(builder, factory_name, doc, **fixed):
    """A named factory: ``builder`` with its architecture arguments fixed, keeping the keras.applications
    positional order (``include_top, weights, input_tensor, ...``) and every keyword overridable."""
    factory = functools.partial(builder, **fixed)
    factory.__name__ = factory.__qualname__ = factory_name
    factory.__doc__ = doc
    factory.__module__ = builder.__module__
    return factory
