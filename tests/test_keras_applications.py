"""Our ImageNet ResNet v1/v2 and DenseNet-121/169/201 are keras.applications' functions: same weighted layers, same
names, same order, and the same outputs once keras.applications' weights are moved into ours by layer name."""

import functools

import numpy as np
import pytest

import keras_convnets as kc
from keras_convnets.models.backend import keras

# The deeper rows of each family (same builder code as the -50 / -121 rows) are marked `deep`: the main pass checks
# them, the passes that change only the Keras or the CPU kernels leave them out (.ci/run).
_deep = functools.partial(pytest.param, marks=pytest.mark.deep)
PAIRS = [
    (kc.ResNet50, keras.applications.ResNet50),
    _deep(kc.ResNet101, keras.applications.ResNet101),
    _deep(kc.ResNet152, keras.applications.ResNet152),
    (kc.ResNet50V2, keras.applications.ResNet50V2),
    _deep(kc.ResNet101V2, keras.applications.ResNet101V2),
    _deep(kc.ResNet152V2, keras.applications.ResNet152V2),
    (kc.DenseNet121, keras.applications.DenseNet121),
    _deep(kc.DenseNet169, keras.applications.DenseNet169),
    _deep(kc.DenseNet201, keras.applications.DenseNet201),
]
SHAPE = (64, 64, 3)


def randomize(model, rng):
    """Random weights everywhere, BN statistics included, so that every layer's placement matters."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
        elif layer.weights:
            layer.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in layer.get_weights()])


def keras3_name(name):
    """tf-keras' DenseNet still names its stem ``conv1/conv``; Keras 3 forbids "/" and says ``conv1_conv``."""
    return name.replace("/", "_")


def weighted_layer_names(model):
    return [keras3_name(layer.name) for layer in model.layers if layer.weights]


@pytest.mark.parametrize("ours,theirs", PAIRS, ids=[getattr(p, "values", p)[0].__name__ for p in PAIRS])
def test_same_function_as_keras_applications(ours, theirs):
    reference = theirs(weights=None, input_shape=SHAPE, classifier_activation=None)
    model = ours(input_shape=SHAPE, classifier_activation=None)
    assert weighted_layer_names(model) == weighted_layer_names(reference)
    randomize(reference, np.random.default_rng(0))
    for layer in reference.layers:
        if layer.weights:
            model.get_layer(keras3_name(layer.name)).set_weights(layer.get_weights())
    x = np.random.default_rng(1).normal(0, 1, (2,) + SHAPE).astype("float32")
    expected = reference(x, training=False).numpy()
    got = model(x, training=False).numpy()
    assert np.max(np.abs(got - expected)) <= 1e-5, np.max(np.abs(got - expected))


def test_every_named_layer_of_keras_applications_exists_in_ours():
    reference = keras.applications.ResNet50V2(weights=None)
    ours = {layer.name for layer in kc.ResNet50V2().layers}
    named = [layer.name for layer in reference.layers if not layer.name.startswith(("max_pooling2d", "input"))]
    assert set(named) <= ours
