"""keras_convnets: paper-exact ResNet, pre-activation ResNet, Wide ResNet, ResNeXt and DenseNet for Keras.

    from keras_convnets import DenseNet121, get_model, list_models, train

The public names are loaded on first use (PEP 562), so ``import keras_convnets`` and ``keras-convnets --help`` import
neither Keras nor TensorFlow; ``from keras_convnets import X`` works as usual. The models run on every Keras 3
backend (``KERAS_BACKEND=tensorflow``, ``jax``, ``torch``) and need no TensorFlow off TensorFlow; training, data, the
exports and the command line do.

A ``.keras`` file of one of our models loads with :func:`load_model` (``kc.load_model(path)``: Keras' own, once our
layers are registered). The layers (``keras_convnets>OptionAShortcut``, ...) register themselves with Keras where they
are defined, when their module is imported, which using any model name of this package does; after that
``keras.models.load_model`` reads such a file too.
"""

import importlib

__version__ = "0.1.0"

#: The public names. Those of the model side are the model modules' own ``__all__`` (found in :data:`_MODEL_MODULES`
#: on first use); those above it are :data:`_ABOVE_MODELS`'. tests/test_models.py checks the three agree.
__all__ = [
    # models.blocks
    "conv3x3", "shortcut", "residual_block", "bottleneck_block", "bottleneck_width", "preact_residual_block",
    "wide_block", "preact_bottleneck_block", "dense_layer", "dense_block", "transition",
    # models.config, models.layers
    "LayerConfig", "OptionAShortcut", "StochasticDepth",
    # models.resnet
    "build_resnet", "ResNet", "CifarResNet", "PreActResNet", "WideResNet", "ResNeXt", "ResNet18", "ResNet34",
    "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2", "ResNeXt50_32x4d",
    "ResNeXt101_32x8d", "WideResNet50_2", "ResNet20", "ResNet32", "ResNet44", "ResNet56", "ResNet110", "ResNet1202",
    "PreActResNet164", "PreActResNet1001", "WRN16_4", "WRN16_8", "WRN28_10", "WRN40_4", "ResNeXt29_8x64d",
    "ResNeXt29_16x64d",
    # models.densenet
    "build_densenet", "DenseNet", "CifarDenseNet", "DenseNet121", "DenseNet169", "DenseNet201", "DenseNet264",
    "DenseNet161", "DenseNet40", "DenseNet100", "DenseNetBC100", "DenseNetBC250", "DenseNetBC190",
    # models.registry
    "ModelInfo", "FeatureLevel", "get_model", "get_backbone", "list_models", "model_info", "load_model",
    # models.weights, models.torch_weights, models.imagenet
    "WeightsUnavailableError", "load_checkpoint", "preprocessing_of", "CheckpointMismatchError",
    "imagenet_class_names", "imagenet_wordnet_ids", "decode_predictions",
    # data, runtime, serving, training (TensorFlow)
    "dataset_spec", "compute_statistics", "load_dataset", "preprocessing_model", "get_strategy",
    "evaluate_saved_model", "export_saved_model", "export", "ExportResult", "recipe_for", "Regularization", "train",
    "TrainResult", "TrainConfig",
]

#: The model modules whose ``__all__`` the model-side names are, in the order they are searched.
_MODEL_MODULES = ("models.blocks", "models.config", "models.layers", "models.resnet", "models.densenet",
                  "models.registry", "models.weights", "models.torch_weights", "models.imagenet")
#: The names above the model side and their modules (which have no ``__all__`` of public names).
_ABOVE_MODELS = {
    **dict.fromkeys(["dataset_spec", "compute_statistics"], "data.catalog"),
    "load_dataset": "data.pipelines",
    "preprocessing_model": "data.preprocessing",
    "get_strategy": "runtime.distribute",
    "export_saved_model": "serving.saved_model",
    "evaluate_saved_model": "serving.inference",
    # deployment: ONNX / LiteRT / OpenVINO files (keras_convnets/serving/formats.py)
    **dict.fromkeys(["export", "ExportResult"], "serving.formats"),
    **dict.fromkeys(["recipe_for", "Regularization"], "training.recipes"),
    **dict.fromkeys(["train", "TrainResult"], "training.loop"),
    "TrainConfig": "training.config",
}


def _module_of(name: str):
    """The imported module that defines the public ``name``."""
    if name in _ABOVE_MODELS:
        return importlib.import_module(f"keras_convnets.{_ABOVE_MODELS[name]}")
    for module_name in _MODEL_MODULES:
        module = importlib.import_module(f"keras_convnets.{module_name}")
        if name in module.__all__:
            return module
    raise ImportError(f"keras_convnets.__all__ names {name!r}, which no module of {_MODEL_MODULES} exports")


def __getattr__(name):
    if name not in __all__:
        raise AttributeError(f"module 'keras_convnets' has no attribute {name!r}")
    try:
        module = _module_of(name)
    except AttributeError as error:  # would otherwise surface as a misleading "cannot import name"
        raise ImportError(f"importing the module of keras_convnets.{name} failed: {error}") from error
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
