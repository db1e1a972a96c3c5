"""Issue 19 item 4: a run's arguments are one ``TrainConfig`` that argparse fills and ``plan()`` consumes, and the
runtime settings a run chooses are passed to its pipelines and ``compile``, never left in a process-wide global."""

import dataclasses

import pytest

from keras_convnets import cli
from keras_convnets.cli import train as train_command
from keras_convnets.training.config import OPTIONS, TrainConfig, config_from
from tests._data_dir import real_data_dir, requires_cifar10


def _parsed(*argv):
    return train_command.train_config(cli.build_parser().parse_args(["train", *argv]))


def test_the_command_line_fills_a_train_config():
    config = _parsed("resnet20", "--dataset", "cifar100", "--epochs", "3", "--lr", "0.05", "--dropout", "0.1",
                     "--jit-compile", "off", "--mixup", "0.2", "--recipe", "modern", "--no-augmentation", "--force")
    assert config == TrainConfig("resnet20", "cifar100", epochs=3, lr=0.05, model_kwargs={"dropout": 0.1},
                                 jit_compile=False, regularization={"mixup": 0.2}, recipe="modern",
                                 augmentation=False, force=True)
    assert _parsed("resnet20") == TrainConfig("resnet20", model_kwargs={}, regularization={})


def test_the_modern_recipes_trivialaugment_can_be_turned_off():
    assert _parsed("resnet20", "--recipe", "modern", "--no-trivialaugment").regularization == {"trivialaugment": False}
    assert _parsed("resnet20", "--trivialaugment").regularization == {"trivialaugment": True}
    # the command line passes what was given; plan combines it with the recipe's as for the API (RandAugment replaces
    # the modern recipe's TrivialAugment unless both are asked for: tests/test_nothing_lost.py)
    assert _parsed("resnet20", "--recipe", "modern", "--randaugment", "2,9").regularization == {"randaugment": (2, 9)}


def test_every_field_has_a_flag():
    """argparse and the dataclass cannot drift apart: each field is a flag's destination, or gathered from a group
    of flags (the factory options, the modern options)."""
    parser = cli.build_parser()
    train = next(action for action in parser._subparsers._group_actions[0].choices.values()
                 if action.prog.endswith(" train"))
    destinations = {action.dest for action in train._actions}
    gathered = {"model_kwargs", "regularization"}
    assert {field.name for field in dataclasses.fields(TrainConfig)} - gathered <= destinations
    assert set(train_command.MODEL_OPTION_FLAGS) <= destinations


def test_an_unknown_option_names_the_closest_field():
    with pytest.raises(TypeError, match="'epoch' \\(did you mean 'epochs'\\?\\)"):
        config_from("resnet20", None, {"epoch": 3})
    with pytest.raises(TypeError, match="either a TrainConfig or a model name"):
        config_from(TrainConfig("resnet20"), None, {"epochs": 3})
    assert config_from("resnet20", None, {"epochs": 3}) == TrainConfig("resnet20", "cifar10", epochs=3)
    assert "model" not in OPTIONS and "epochs" in OPTIONS


@requires_cifar10
def test_plan_takes_a_config_or_keywords_alike(tmp_path):
    from keras_convnets.training import loop

    by_keywords = loop.plan("resnet20", epochs=2, lr=0.05, out=str(tmp_path / "a"), data_dir=real_data_dir())
    by_config = loop.plan(TrainConfig("resnet20", epochs=2, lr=0.05, out=str(tmp_path / "a"),
                                      data_dir=real_data_dir()))
    assert by_keywords == by_config
    assert by_config.config.out == str(tmp_path / "a") and by_config.recipe.lr == 0.05


@requires_cifar10
def test_a_runs_settings_reach_its_pipelines_and_leave_the_process_alone(tmp_path, monkeypatch):
    """The flags' settings go to the run's pipelines and compile options; the process' defaults, which any later
    pipeline gets, are not changed by a run (before issue 19 a run installed its settings in a global)."""
    from keras_convnets.data import pipelines
    from keras_convnets.runtime import settings as runtime_settings
    from keras_convnets.training import loop

    class Stop(Exception):
        pass

    seen = {}

    def spy(description, batch_size, *, settings=None, **kwargs):
        seen["settings"] = settings
        raise Stop()

    monkeypatch.setattr(pipelines, "train_dataset", spy)
    before = runtime_settings.default_settings()
    with pytest.raises(Stop):
        loop.train("resnet20", epochs=1, batch_size=8, steps_per_execution=before.steps_per_execution + 2,
                   out=str(tmp_path / "run"), data_dir=real_data_dir())
    assert seen["settings"].steps_per_execution == before.steps_per_execution + 2
    assert runtime_settings.default_settings() == before


@requires_cifar10
def test_the_precision_a_run_resolves_is_the_one_its_model_is_built_with(tmp_path, monkeypatch):
    """Worked out once (runtime.precision.choose_precision, per machine) and passed down: on a GPU host, bf16 is
    Keras' mixed_bfloat16 policy, and that policy is what the model is built with (build_model has no default that
    could decide otherwise)."""
    import inspect

    from keras_convnets.runtime import machine
    from keras_convnets.training import loop

    class Stop(Exception):
        pass

    built = []

    def spy(run_plan, image_shape, num_classes, policy):
        built.append(policy)
        raise Stop()

    assert inspect.signature(loop.build_model).parameters["policy"].default is inspect.Parameter.empty
    monkeypatch.setattr(machine, "detect_machine", lambda strategy=None: machine.Machine(16, gpus=1))
    monkeypatch.setattr(loop, "build_model", spy)
    with pytest.raises(Stop):
        loop.train("resnet20", epochs=1, batch_size=8, precision="bf16", out=str(tmp_path / "run"),
                   data_dir=real_data_dir())
    assert built == ["mixed_bfloat16"]
