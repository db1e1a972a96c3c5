"""The papers' recipes and their schedules, and the SavedModel export's contract."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_convnets import ResNet20
from keras_convnets.data import catalog, preprocessing
from keras_convnets.models import registry
from keras_convnets.serving import saved_model as savedmodel
from keras_convnets.training import recipes


def _lr(schedule, step):
    return float(schedule(step)) if callable(schedule) else schedule


@pytest.mark.parametrize("model, batch, epochs, wd, nesterov, dropout", [
    ("resnet20", 128, 164, 1e-4, False, 0.0),
    ("preact_resnet164", 128, 164, 1e-4, False, 0.0),
    ("wrn_28_10", 128, 200, 5e-4, True, 0.3),
    ("resnext29_8x64d", 128, 300, 5e-4, True, 0.0),
    ("densenet_bc_100", 64, 300, 1e-4, True, 0.0),
    ("resnet50", 256, 90, 1e-4, False, 0.0),
    ("densenet121", 256, 90, 1e-4, True, 0.0),
])
def test_recipe_per_family(model, batch, epochs, wd, nesterov, dropout):
    recipe = recipes.recipe_for(registry.model_info(model))
    assert (recipe.batch_size, recipe.epochs, recipe.weight_decay, recipe.nesterov, recipe.lr) == \
        (batch, epochs, wd, nesterov, 0.1)
    assert recipe.model_kwargs(augmentation=True).get("dropout", 0.0) == dropout


def test_densenet_dropout_only_without_augmentation():
    recipe = recipes.recipe_for(registry.model_info("densenet40"))
    assert recipe.model_kwargs(augmentation=False) == {"dropout": 0.2}
    assert recipe.model_kwargs(augmentation=True) == {}


def test_piecewise_schedule_scales_with_training_length():
    schedule = recipes.learning_rate(recipes.RESNET_CIFAR, total_steps=1000)
    assert [round(_lr(schedule, s), 6) for s in (0, 499, 501, 749, 751, 999)] == \
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    wrn = recipes.learning_rate(recipes.WRN_CIFAR, total_steps=200)
    assert [round(_lr(wrn, s), 6) for s in (59, 61, 121, 161)] == [0.1, 0.02, 0.004, 0.0008]


def test_resnet110_warms_up_at_0_01():
    recipe = recipes.recipe_for(registry.model_info("resnet110"))
    schedule = recipes.learning_rate(recipe, total_steps=64_000)
    assert [round(_lr(schedule, s), 6) for s in (0, 399, 401, 32_001)] == [0.01, 0.01, 0.1, 0.01]
    assert recipes.recipe_for(registry.model_info("resnet20")).warmup_fraction == 0


def test_schedule_overrides():
    base = recipes.RESNET_CIFAR
    cosine = recipes.learning_rate(recipes.parse_schedule("cosine", base), 100)
    assert _lr(cosine, 0) == pytest.approx(0.1) and _lr(cosine, 50) == pytest.approx(0.05, abs=1e-3)
    assert recipes.learning_rate(recipes.parse_schedule("constant", base), 100) == 0.1
    assert recipes.parse_schedule("0.3,0.6", base).boundaries == (0.3, 0.6)
    for bad in ("0.6,0.3", "1.5", "linear", ""):
        with pytest.raises(ValueError, match="schedule must be"):
            recipes.parse_schedule(bad, base)


def _model():
    return preprocessing.preprocessing_model(ResNet20(), catalog.dataset_spec("cifar10"), (32, 32, 3))


def test_export_serves_uint8_and_names_classes(tmp_path):
    model, names = _model(), [f"class{i}" for i in range(10)]
    path = savedmodel.export_saved_model(model, str(tmp_path / "saved_model"), names)
    loaded = tf.saved_model.load(path)
    spec = loaded.signatures["serving_default"].structured_input_signature[1]["images"]
    assert spec.dtype == tf.uint8 and spec.shape.rank is None  # any shape in: the signature says what it takes
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(savedmodel.predict(loaded, images), model(images), atol=1e-4)
    assert savedmodel.load_class_names(loaded) == names
    assert open(os.path.join(path, "assets", "labels.txt")).read().split() == names
    assert sorted(os.listdir(tmp_path)) == ["saved_model"], "no temporary directory is left behind"


def test_failed_export_keeps_the_previous_one(tmp_path, monkeypatch):
    path = str(tmp_path / "saved_model")
    savedmodel.export_saved_model(_model(), path, list("abcdefghij"))
    before = open(os.path.join(path, "saved_model.pb"), "rb").read()
    monkeypatch.setattr(savedmodel, "predict",
                        lambda saved_model, images, **kwargs: np.zeros((len(images), 10), np.float32))
    with pytest.raises(savedmodel.ExportError, match="left unchanged"):
        savedmodel.export_saved_model(_model(), path, list("abcdefghij"))
    assert open(os.path.join(path, "saved_model.pb"), "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["saved_model"]
