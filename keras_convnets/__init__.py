"""keras_convnets: paper-exact ResNet, pre-activation ResNet, Wide ResNet, ResNeXt and DenseNet for Keras.

    from keras_convnets import DenseNet121, get_model, list_models, train

The public names are loaded on first use (PEP 562), so ``import keras_convnets`` and ``keras-convnets --help`` do not
pay for importing TensorFlow; ``from keras_convnets import X`` works as usual.

Our custom layers are registered with Keras (``keras_convnets>OptionAShortcut``, ...) as soon as both this package
and Keras are imported, in either order, so ``import keras_convnets`` is all a script needs to load a ``.keras`` file
of one of our models.
"""

import ast
import importlib
import importlib.abc
import os
import sys

__version__ = "0.1.0"

# The layers, bottom up: ``models`` (the Keras choice, layers, blocks, the builder core and the family modules,
# weights, registry), ``runtime`` (the machine, precision, settings, strategies), ``data`` (catalog, pipelines,
# transforms, augmentation), ``serving`` (the SavedModel, inference, other formats, convert), ``training`` (config,
# plan, recipes, callbacks, the loop) and ``cli`` on top. The model modules' public names are their ``__all__``, read
# from their source (not imported: that would import TensorFlow); the others are listed here.
_MODEL_MODULES = ("models.blocks", "models.config", "models.layers", "models.resnet", "models.densenet",
                  "models.registry", "models.weights", "models.torch_weights", "models.imagenet")
_TRAINING_EXPORTS = {
    **dict.fromkeys(["dataset_spec", "compute_statistics"], "data.catalog"),
    "load_dataset": "data.pipelines",
    "preprocessing_model": "data.preprocessing",
    "get_strategy": "runtime.distribute",
    "export_saved_model": "serving.saved_model",
    "evaluate_saved_model": "serving.inference",
    # Deployment: ONNX / LiteRT / OpenVINO files (keras_convnets/serving/formats.py).
    **dict.fromkeys(["export", "ExportResult"], "serving.formats"),
    **dict.fromkeys(["recipe_for", "Regularization"], "training.recipes"),
    **dict.fromkeys(["train", "TrainResult"], "training.loop"),
    "TrainConfig": "training.config",
}


def _declared_all(module: str) -> list:
    """The literal ``__all__`` of ``keras_convnets.{module}``, read from its source without importing it."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), *module.split(".")) + ".py"
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise ImportError(f"keras_convnets.{module} declares no __all__")


_EXPORTS = {name: module for module in _MODEL_MODULES for name in _declared_all(module)}
_EXPORTS.update(_TRAINING_EXPORTS)

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
