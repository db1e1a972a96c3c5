"""``.keras`` round trip of one small model of every family and custom-layer option (issue 15, case 4): saved here,
reloaded in a fresh process with ``keras_convnets.load_model`` (the documented way: no layer module imported first),
where its outputs must equal the saved ones and one train step must run. Keras 3 only: ``.keras`` files are Keras 3's
format."""

import json
import subprocess
import sys

import numpy as np
import pytest

from keras_convnets.models.backend import KERAS_3

pytestmark = pytest.mark.skipif(not KERAS_3, reason=".keras files are Keras 3's format")

# name -> (factory, kwargs): each exercises one custom layer or option.
MODELS = {
    "option_a_resnet20": ("ResNet20", {}),                                            # OptionAShortcut
    "stochastic_depth": ("CifarResNet", {"depth": 8, "stochastic_depth": 0.5}),       # StochasticDepth
    "wide_resnet_dropout": ("WideResNet", {"depth": 10, "width": 1, "dropout": 0.3}),
    "resnext": ("ResNeXt", {"depth": 11, "cardinality": 2, "group_width": 4}),
    "densenet_bc_memory_efficient": ("CifarDenseNet", {"depth": 10, "growth_rate": 4, "memory_efficient": True}),
}

RELOAD = """
import json, sys
import numpy as np
import keras_convnets  # the only import of this package

results = {}
for name in json.loads(sys.argv[1]):
    model = keras_convnets.load_model(f"{name}.keras")
    images = np.load(f"{name}.images.npy")
    difference = float(np.abs(model.predict(images, verbose=0) - np.load(f"{name}.expected.npy")).max())
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss = float(model.train_on_batch(images, np.zeros(len(images), "int64")))
    results[name] = {"difference": difference, "loss": loss}
print("RESULTS" + json.dumps(results))
"""


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory):
    import keras_convnets

    directory = tmp_path_factory.mktemp("keras_files")
    rng = np.random.default_rng(0)
    for name, (factory, kwargs) in MODELS.items():
        model = getattr(keras_convnets, factory)(input_shape=(32, 32, 3), classes=10, **kwargs)
        model.save(directory / f"{name}.keras")
        images = rng.random((2, 32, 32, 3)).astype("float32")
        np.save(directory / f"{name}.images.npy", images)
        np.save(directory / f"{name}.expected.npy", model.predict(images, verbose=0))
    out = subprocess.run([sys.executable, "-c", RELOAD, json.dumps(list(MODELS))], capture_output=True, text=True,
                         timeout=600, cwd=str(directory), check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.split("RESULTS")[1])


@pytest.mark.parametrize("name", list(MODELS))
def test_keras_file_reloads_with_equal_outputs_and_trains(reloaded, name):
    assert reloaded[name]["difference"] < 1e-5
    assert np.isfinite(reloaded[name]["loss"])


def test_custom_layers_register_where_they_are_defined_without_an_import_hook():
    import sys

    import keras_convnets as kc
    from keras_convnets.models.backend import keras

    assert kc.load_model.__module__ == "keras_convnets.models.registry"  # a model name: the layer modules are loaded
    registered = keras.saving.get_custom_objects()
    for layer in ("OptionAShortcut", "StochasticDepth", "RecomputedConv"):
        assert f"keras_convnets>{layer}" in registered
    assert not [finder for finder in sys.meta_path if type(finder).__module__.startswith("keras_convnets")]
