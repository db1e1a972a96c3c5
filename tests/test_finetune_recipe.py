"""The fine-tuning recipe: chosen when a run starts from weights; smaller rate, short cosine, no warm-up."""

import numpy as np

from keras_convnets.models import registry
from keras_convnets.training import recipes


def test_pretrained_runs_get_the_fine_tuning_recipe():
    for name in ("resnet50", "densenet121", "resnet20"):
        info = registry.model_info(name)
        assert recipes.recipe_for(info, pretrained=True) is recipes.FINE_TUNE
        assert recipes.recipe_for(info) is not recipes.FINE_TUNE
    imagenet = recipes.recipe_for(registry.model_info("resnet50"))
    scaled = imagenet.lr * recipes.FINE_TUNE.batch_size / imagenet.batch_size
    assert recipes.FINE_TUNE.lr == scaled / 10 and recipes.FINE_TUNE_HEAD.lr == scaled
    assert recipes.FINE_TUNE.warmup_fraction == 0 and recipes.FINE_TUNE.epochs <= 10


def test_fine_tuning_schedule_is_a_cosine_from_the_peak_without_warm_up():
    schedule = recipes.learning_rate(recipes.FINE_TUNE, total_steps=100)
    rates = [float(np.asarray(schedule(step))) for step in (0, 50, 100)]
    np.testing.assert_allclose(rates, [recipes.FINE_TUNE.lr, recipes.FINE_TUNE.lr / 2, 0.0], atol=1e-7)
