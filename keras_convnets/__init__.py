"""keras_convnets: paper-exact ResNet, pre-activation ResNet, Wide ResNet, ResNeXt and DenseNet for Keras.

    from keras_convnets import DenseNet121, get_model, list_models, train

The public names are loaded on first use (PEP 562), so ``import keras_convnets`` and ``keras-convnets --help`` do not
pay for importing TensorFlow; ``from keras_convnets import X`` works as usual.

Our custom layers are registered with Keras (``keras_convnets>OptionAShortcut``, ...) as soon as both this package
and Keras are imported, in either order, so ``import keras_convnets`` is all a script needs to load a ``.keras`` file
of one of our models.
"""

import importlib
import importlib.abc
import sys

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
    **dict.fromkeys(["dataset_spec", "load_dataset", "preprocessing_model"], "training.data"),
    "get_strategy": "training.distribute",
    **dict.fromkeys(["evaluate_saved_model", "export_saved_model"], "training.export"),
    "recipe_for": "training.recipes",
    **dict.fromkeys(["train", "TrainResult"], "training.loop"),
}

__all__ = list(_EXPORTS)

#: The modules whose import registers our serializable layers with Keras.
_LAYER_MODULES = ("keras_convnets.models.layers", "keras_convnets.models.recompute")


_BACKEND = "keras_convnets.models.backend"


def _register_layers():
    """Imports the layer modules (their decorators register them) once Keras and our backend module are both fully
    imported; until then it does nothing and the hook below calls it again."""
    backend = sys.modules.get(_BACKEND)
    if not ("keras" in sys.modules or "tf_keras" in sys.modules) or (backend and not hasattr(backend, "KERAS_3")):
        return  # Keras not loaded yet, or our backend module is mid-import (it imports TensorFlow, which loads Keras)
    for finder in [f for f in sys.meta_path if isinstance(f, _RegisterLayersWhenKerasLoads)]:
        sys.meta_path.remove(finder)
    for module in _LAYER_MODULES:
        importlib.import_module(module)


class _RegisterLayersWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Calls :func:`_register_layers` right after Keras (Keras 3 or tf-keras) or our backend module has been
    imported, without importing either here."""

    searching = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in ("keras", "tf_keras", _BACKEND) or self.searching:
            return None
        self.searching = True
        try:
            spec = next((found for found in (finder.find_spec(fullname, path, target) for finder in sys.meta_path
                                             if finder is not self and hasattr(finder, "find_spec"))
                         if found is not None), None)
        finally:
            self.searching = False
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            _register_layers()

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _RegisterLayersWhenKerasLoads())
_register_layers()


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
