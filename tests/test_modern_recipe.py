"""Issue 22's training options around the loop: the linear warm-up's rates at exact steps for every schedule, the
modern recipe's resolution (and the papers' run identity unchanged), one-line errors for bad options, flip TTA, and
one tiny end-to-end ``train(...)`` with every option on that is killed after its first epoch, resumes with its EMA
and exports (ResNet-20, 2 steps per epoch; ~1 min on 2 cores)."""

import json
import logging
import os

import numpy as np
import pytest

from keras_convnets import cli
from keras_convnets.training import recipes
from tests._data_dir import real_data_dir, requires_cifar10

BASE = recipes.Recipe("test", epochs=10, batch_size=128, lr=0.1, weight_decay=1e-4, boundaries=(0.5, 0.75))


def _rates(recipe, total, steps):
    schedule = recipes.learning_rate(recipe, total)
    return [float(schedule(step)) if callable(schedule) else float(schedule) for step in steps]


@pytest.mark.parametrize("schedule,after", [
    # 100 steps, warm-up 2 of 10 epochs = 20 steps; then the schedule over the remaining 80
    ("cosine", {20: 0.1, 60: 0.05, 100: 0.0}),
    ("piecewise", {20: 0.1, 60: 0.1, 61: 0.01, 81: 0.001}),  # Keras: values[i] while step <= boundaries[i]
    ("constant", {20: 0.1, 99: 0.1}),
])
def test_linear_warmup_rates_at_exact_steps_then_the_schedule(schedule, after):
    recipe = BASE.__class__(**{**BASE.__dict__, "schedule": schedule, "warmup_epochs": 2.0})
    assert recipes.warmup_steps(recipe, 100) == 20
    warm = _rates(recipe, 100, [0, 9, 19])
    np.testing.assert_allclose(warm, [0.1 / 20, 0.1 * 10 / 20, 0.1], rtol=1e-6)
    np.testing.assert_allclose(_rates(recipe, 100, list(after)), list(after.values()), rtol=1e-5, atol=1e-7)


def test_no_warmup_is_the_papers_schedule_unchanged():
    schedule = recipes.learning_rate(BASE, 100)
    assert type(schedule).__name__ == "PiecewiseConstantDecay"
    np.testing.assert_allclose(_rates(BASE, 100, [0, 50, 51, 76]), [0.1, 0.1, 0.01, 0.001], rtol=1e-6)


def test_ema_decay_keeps_torchvisions_horizon_as_a_share_of_training():
    # torchvision: decay 0.99998 every 32 steps adjusted by batch 1024 * 32 / 600 epochs: 3e7 images = 23.4 epochs
    assert recipes.EMA_HORIZON == pytest.approx(23.42 / 600, rel=1e-3)
    decay = recipes.ema_decay(2460)
    assert 1 / (1 - decay) == pytest.approx(recipes.EMA_HORIZON * 2460, rel=1e-9)
    assert recipes.ema_decay(10) == 0.0  # too short to average


def test_regularization_defaults_are_off_and_recorded_only_when_on():
    assert recipes.Regularization().to_json() == {} and not recipes.Regularization().active
    options = recipes.Regularization(mixup=0.2, randaugment=[2, 9])
    assert options.to_json() == {"mixup": 0.2, "randaugment": [2, 9]} and options.soft_labels and options.per_image


@requires_cifar10
def test_modern_recipe_resolves_and_the_paper_runs_identity_is_unchanged(tmp_path):
    from keras_convnets.training.loop import plan

    paper = plan("resnet20", "cifar10", epochs=60, out=str(tmp_path / "p"), data_dir=real_data_dir())
    assert set(paper.arguments) == {"model", "dataset", "epochs", "batch_size", "lr", "weight_decay", "schedule",
                                    "boundaries", "factor", "momentum", "nesterov", "warmup_fraction", "warmup_lr",
                                    "augmentation", "precision", "seed", "model_kwargs"}
    modern = plan("resnet20", "cifar10", epochs=60, out=str(tmp_path / "m"), data_dir=real_data_dir(),
                  recipe="modern", regularization={"mixup": 0.0})
    args = modern.arguments
    assert args["recipe"] == "modern" and args["schedule"] == "cosine" and args["warmup_epochs"] == 0.5
    assert (args["lr"], args["batch_size"], args["weight_decay"]) == (0.1, 128, 1e-4)  # the paper's
    reg = args["regularization"]
    assert reg["label_smoothing"] == 0.1 and reg["cutmix"] == 1.0 and "mixup" not in reg  # overridden to off
    assert reg["trivialaugment"] and reg["random_erasing"] == 0.1
    assert reg["ema_horizon"] == pytest.approx(recipes.EMA_HORIZON) and "ema" not in reg  # a share of the run
    # worked out once, from the global batch, and shared: the learning rate's warm-up and the EMA's, the EMA's decay
    for replicas in (1, 2):
        steps = -(-5170 // (128 * replicas))  # ceil: 41 steps an epoch on one replica, 21 on two
        schedule = modern.schedule(replicas)
        assert (schedule.steps_per_epoch, schedule.total_steps) == (steps, steps * 60)
        assert schedule.ema_warmup_steps == schedule.warmup_steps == recipes.warmup_steps(modern.recipe, steps * 60)
        assert schedule.ema_decay == pytest.approx(recipes.ema_decay(steps * 60))
    assert modern.schedule(1).warmup_steps == 20 and modern.schedule(2).warmup_steps == 10


@pytest.mark.parametrize("flags,message", [
    (["--randaugment", "2"], "--randaugment must be N,M"),
    (["--randaugment", "2,40"], "randaugment (--randaugment N,M) must be (N, M)"),
    (["--randaugment", "2,9", "--trivialaugment"], "choose one"),
    (["--mixup", "-1"], "mixup (--mixup) must be a finite number >= 0"),
    (["--label-smoothing", "1"], "label_smoothing (--label-smoothing) must be a number in [0, 1)"),
    (["--random-erasing", "1.5"], "random_erasing (--random-erasing) must be a number in [0, 1]"),
    (["--ema", "1"], "ema (--ema, a decay per step) must be a number in [0, 1)"),
    (["--warmup-epochs", "-1"], "warmup_epochs (--warmup-epochs) must be a number in [0, 3]"),
    (["--recipe", "fancy"], "invalid choice: 'fancy'"),
])
def test_bad_options_are_one_line_usage_errors(capsys, tmp_path, flags, message):
    status = cli.main(["train", "resnet20", "--epochs", "3", "--out", str(tmp_path / "r"), *flags])
    err = capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_evaluate_tta_accepts_only_flip(capsys, tmp_path):
    assert cli.main(["evaluate", str(tmp_path), "--tta", "rotate"]) == 2
    assert "invalid choice: 'rotate'" in capsys.readouterr().err


def test_flip_tta_of_a_flip_invariant_model_equals_plain_evaluation_and_averages_otherwise():
    from keras_convnets.serving.inference import tta_probabilities

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 8, 8, 3)).astype(np.uint8)

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def invariant(x):  # per-channel means: the same for an image and its mirror
        return softmax(np.asarray(x, np.float64).mean(axis=(1, 2)) / 50)

    def left_half(x):
        return softmax(np.asarray(x, np.float64)[:, :, :4].mean(axis=(1, 2)) / 50)

    np.testing.assert_array_equal(tta_probabilities(invariant, images, "flip"), invariant(images))
    flipped = (left_half(images) + left_half(images[:, :, ::-1])) / 2
    np.testing.assert_allclose(tta_probabilities(left_half, images, "flip"), flipped)
    assert not np.allclose(flipped, left_half(images))


@requires_cifar10
def test_every_option_on_trains_resumes_with_its_ema_and_exports(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="keras_convnets")  # the library reports through logging
    from keras_convnets.serving import inference
    from keras_convnets.training import callbacks, ema, loop

    out = str(tmp_path / "run")
    options = dict(epochs=2, steps_per_epoch=2, out=out, data_dir=real_data_dir(), seed=3, recipe="modern",
                   warmup_epochs=0.5, regularization={"ema": 0.9, "randaugment": (2, 9), "trivialaugment": False,
                                                      "mixup": 0.2, "cutmix": 1.0, "label_smoothing": 0.1,
                                                      "random_erasing": 0.5}, verbose=0)
    guard = callbacks.divergence_guard

    class Killed(Exception):
        pass

    def killing_guard():
        class KillAtEpoch2(type(guard())):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    raise Killed("a kill after epoch 1's checkpoint")
                super().on_epoch_begin(epoch, logs)

        return KillAtEpoch2()

    monkeypatch.setattr(callbacks, "divergence_guard", killing_guard)
    with pytest.raises(Killed):
        loop.train("resnet20", "cifar10", **options)
    checkpoints = sorted(os.listdir(os.path.join(out, "backup")))
    assert checkpoints == ["epoch-00001"]
    assert os.path.isfile(os.path.join(out, "backup", "epoch-00001", ema.STATE_FILE))

    monkeypatch.setattr(callbacks, "divergence_guard", guard)
    loaded = []
    make = ema.callback

    def spying_callback(*args, **kwargs):
        averaging = make(*args, **kwargs)
        apply = averaging.apply_state

        def spy(state):
            apply(state)
            loaded.append(averaging.steps)

        averaging.apply_state = spy
        return averaging

    monkeypatch.setattr(ema, "callback", spying_callback)
    result = loop.train("resnet20", "cifar10", **options)
    assert "Resuming at epoch 2" in caplog.text
    assert loaded == [2], "the EMA resumed from the checkpoint's shadow after its 2 steps"
    assert [row["epoch"] for row in json.load(open(os.path.join(out, "history.json")))] == [1, 2]
    record = json.load(open(os.path.join(out, "run.json")))
    assert record["status"] == "complete" and record["arguments"]["regularization"]["randaugment"] == [2, 9]
    assert 0.0 <= result.test_accuracy <= 1.0 and np.isfinite(result.test_loss)
    accuracy, count = inference.evaluate_saved_model(result.export_path, "cifar10", data_dir=real_data_dir(),
                                                  tta="flip")
    assert count == 1017 and 0.0 <= accuracy <= 1.0
