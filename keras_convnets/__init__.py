"""keras_convnets: paper-exact ResNet, pre-activation ResNet, Wide ResNet, ResNeXt and DenseNet for Keras.

    from keras_convnets import DenseNet121, get_model, list_models, train

The public names are loaded on first use (PEP 562), so ``import keras_convnets`` and ``keras-convnets --help`` do not
pay for importing TensorFlow; ``from keras_convnets import X`` works as usual.
"""

import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it. Two subpackages, bottom up: ``models`` (the Keras choice, layers, blocks,
# the builders and their factories, weights, registry) and ``training`` (data, recipes, distribution, the fit loop,
# export, runtime settings), which knows models only through the registry; ``cli`` sits on top.
_EXPORTS = {
    **dict.fromkeys(["residual_block", "bottleneck_block", "preact_residual_block", "preact_bottleneck_block",
                     "wide_block", "shortcut", "dense_layer", "dense_block", "transition"], "models.blocks"),
    "LayerConfig": "models.config",
    **dict.fromkeys(["OptionAShortcut", "StochasticDepth"], "models.layers"),
    **dict.fromkeys(["ResNet", "CifarResNet", "PreActResNet", "WideResNet", "ResNeXt",
                     "ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2",
                     "ResNet152V2", "ResNeXt50_32x4d", "ResNeXt101_32x8d", "WideResNet50_2",
                     "ResNet20", "ResNet32", "ResNet44", "ResNet56", "ResNet110", "ResNet1202", "PreActResNet164",
                     "PreActResNet1001", "WRN16_4", "WRN16_8", "WRN28_10", "WRN40_4", "ResNeXt29_8x64d",
                     "ResNeXt29_16x64d"], "models.resnet"),
    **dict.fromkeys(["DenseNet", "CifarDenseNet", "DenseNet121", "DenseNet169", "DenseNet201", "DenseNet264",
                     "DenseNet161", "DenseNet40", "DenseNet100", "DenseNetBC100", "DenseNetBC250",
                     "DenseNetBC190"], "models.densenet"),
    **dict.fromkeys(["get_model", "list_models", "model_info"], "models.registry"),
    "WeightsUnavailableError": "models.weights",
    **dict.fromkeys(["load_checkpoint", "preprocessing_of", "CheckpointMismatchError"], "models.torch_weights"),
    **dict.fromkeys(["dataset_spec", "load_dataset", "preprocessing_model"], "training.data"),
    "get_strategy": "training.distribute",
    **dict.fromkeys(["evaluate_saved_model", "export_saved_model"], "training.export"),
    "recipe_for": "training.recipes",
    **dict.fromkeys(["train", "TrainResult"], "training.loop"),
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_convnets' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"keras_convnets.{_EXPORTS[name]}")
    except AttributeError as error:  # would otherwise surface as a misleading "cannot import name"
        raise ImportError(f"importing keras_convnets.{_EXPORTS[name]} failed: {error}") from error
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
