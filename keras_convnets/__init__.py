"""keras_convnets: paper-exact ResNet, pre-activation ResNet, Wide ResNet, ResNeXt and DenseNet for Keras.

    from keras_convnets import DenseNet121, get_model, list_models
"""

from keras_convnets.blocks import (bottleneck_block, dense_block, dense_layer, preact_bottleneck_block,
                                   preact_residual_block, residual_block, shortcut, transition, wide_block)
from keras_convnets.config import LayerConfig
from keras_convnets.densenet import (CifarDenseNet, DenseNet, DenseNet40, DenseNet100, DenseNet121, DenseNet161,
                                     DenseNet169, DenseNet201, DenseNet264, DenseNetBC100, DenseNetBC190,
                                     DenseNetBC250)
from keras_convnets.layers import OptionAShortcut, StochasticDepth
from keras_convnets.registry import get_model, list_models, model_info
from keras_convnets.resnet import (CifarResNet, PreActResNet, PreActResNet164, PreActResNet1001, ResNet, ResNet18,
                                   ResNet20, ResNet32, ResNet34, ResNet44, ResNet50, ResNet50V2, ResNet56,
                                   ResNet101, ResNet101V2, ResNet110, ResNet152, ResNet152V2, ResNet1202, ResNeXt,
                                   ResNeXt29_8x64d, ResNeXt29_16x64d, ResNeXt50_32x4d, ResNeXt101_32x8d,
                                   WideResNet, WideResNet50_2, WRN16_4, WRN16_8, WRN28_10, WRN40_4)
from keras_convnets.weights import WeightsUnavailableError
# Training, data and export (after the models: they know models only through the registry). `train` the function
# shadows the `keras_convnets.train` module attribute; `from keras_convnets.train import ...` still reaches the module.
from keras_convnets.data import dataset_spec, load_dataset, preprocessing_model
from keras_convnets.distribute import get_strategy
from keras_convnets.export import evaluate_saved_model, export_saved_model
from keras_convnets.recipes import recipe_for
from keras_convnets.train import TrainResult, train

__version__ = "0.1.0"

__all__ = [
    # blocks
    "residual_block", "bottleneck_block", "preact_residual_block", "preact_bottleneck_block", "wide_block",
    "shortcut", "dense_layer", "dense_block", "transition", "LayerConfig", "OptionAShortcut", "StochasticDepth",
    # general builders
    "ResNet", "CifarResNet", "PreActResNet", "WideResNet", "ResNeXt", "DenseNet", "CifarDenseNet",
    # ImageNet factories
    "ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2",
    "ResNeXt50_32x4d", "ResNeXt101_32x8d", "WideResNet50_2", "DenseNet121", "DenseNet169", "DenseNet201",
    "DenseNet264", "DenseNet161",
    # CIFAR factories
    "ResNet20", "ResNet32", "ResNet44", "ResNet56", "ResNet110", "ResNet1202", "PreActResNet164",
    "PreActResNet1001", "WRN16_4", "WRN16_8", "WRN28_10", "WRN40_4", "ResNeXt29_8x64d", "ResNeXt29_16x64d",
    "DenseNet40", "DenseNet100", "DenseNetBC100", "DenseNetBC250", "DenseNetBC190",
    # registry
    "get_model", "list_models", "model_info", "WeightsUnavailableError",
    # training, data, export
    "train", "TrainResult", "load_dataset", "dataset_spec", "preprocessing_model", "export_saved_model",
    "evaluate_saved_model", "get_strategy", "recipe_for",
]
