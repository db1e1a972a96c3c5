"""Fine-tuning: a registered model's pretrained backbone under a new classifier for the dataset's classes, and the
frozen-backbone phase.

:func:`build` asks the model's factory for the backbone without its classifier (``include_top=False``,
``pooling="avg"``) with ``weights=`` passed through as given (``"imagenet"``: the published keras.applications file;
a path: a weights file of the backbone, such as keras.applications' ``*_notop.h5`` or ``save_weights`` of a model
built with ``include_top=False``), and puts a new ``predictions`` layer on it, as keras.applications' top is (float32
softmax, the run's coupled weight decay). The backbone stays one nested model named ``backbone``.

:func:`set_backbone_trainable` freezes or unfreezes it. Frozen, the backbone's BatchNorm layers run in inference mode
(their moving statistics are used and not updated): Keras' documented behaviour for a BatchNormalization layer whose
``trainable`` is False, which the Keras transfer-learning guide relies on. A frozen phase trains the head alone; the
next phase unfreezes every layer at the fine-tuning rate (:data:`keras_convnets.training.recipes.FINE_TUNE_HEAD` then
:data:`~keras_convnets.training.recipes.FINE_TUNE`). The model must be compiled again after either call.
"""

from typing import Any

BACKBONE = "backbone"


def build(info, weights: Any, classes: int, *, input_shape: tuple, weight_decay: float = 0.0, dtype: Any = None,
          reverse_channels: bool = False, **options: Any):
    """The registered model ``info`` (a :class:`keras_convnets.models.registry.ModelInfo`) with ``weights`` loaded
    into its backbone and a new ``classes``-way classifier. ``reverse_channels``: the weights expect BGR input
    (keras.applications' ResNet-50/101/152 "caffe" mode); the first convolution's input channels are reversed once, so
    the RGB input normalized by the model's first layer reaches it as those weights expect."""
    from keras_convnets.models import application
    from keras_convnets.models.backend import keras

    backbone = info.build(include_top=False, weights=weights, input_shape=tuple(input_shape), pooling="avg",
                          weight_decay=weight_decay, dtype=dtype, name=BACKBONE, **options)
    if reverse_channels:
        kernel = backbone.get_layer("conv1_conv").kernel
        kernel.assign(kernel[:, :, ::-1, :])
    config = application.layer_config(info.architecture.config, dtype=dtype, weight_decay=weight_decay)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    outputs = config.dense(classes, "softmax", name="predictions", dtype="float32")(backbone(inputs))
    return keras.Model(inputs, outputs, name=info.name)


def backbone_of(model):
    """The nested backbone of a model from :func:`build` (itself, or behind the preprocessing model)."""
    for layer in model.layers:
        if layer.name == BACKBONE:
            return layer
        if hasattr(layer, "layers"):
            found = backbone_of(layer)
            if found is not None:
                return found
    return None


def set_backbone_trainable(model, trainable: bool) -> None:
    """Freezes (``False``: weights fixed, BatchNorm in inference mode) or unfreezes the backbone of ``model``."""
    backbone = backbone_of(model)
    if backbone is None:
        raise ValueError(f"{model.name} has no '{BACKBONE}' (build it with keras_convnets.training.finetune.build)")
    backbone.trainable = trainable
