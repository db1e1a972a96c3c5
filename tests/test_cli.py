"""The command line's contract: exit 0 on success, 2 with a one-line reason on user errors, `--help` everywhere."""

import os
import subprocess
import sys

import pytest

from keras_convnets.cli import main
from tests._data_dir import real_data_dir, requires_cifar10


def _error(capsys, argv):
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, reason", [
    (["train", "resnet21"], "unknown model 'resnet21'; known models: resnet18"),
    (["train", "resnet20", "--dataset", "cifar_10"], "'cifar_10' is neither a tfds dataset nor a folder of class "
                                                     "sub-folders; closest tfds names: cifar10"),
    (["train", "resnet20", "--dataset", "/no/such/photos"], "'/no/such/photos' is not a folder"),
    (["train", "resnet18", "--weights", "imagenet"], "resnet18 has no published ImageNet weights; the models that "
                                                     "do: resnet50"),
    (["train", "resnet50", "--freeze-backbone"], "freeze_backbone (--freeze-backbone) trains a new head on a frozen "
                                                 "pretrained backbone: it needs weights"),
    (["train", "resnet20", "--strategy", "warp"], "unknown strategy 'warp'"),
    (["train", "resnet20", "--epochs", "three"], "invalid int value"),
    (["train", "resnet20", "--epochs", "0"], "epochs must be a positive integer"),
    (["train", "resnet20", "--lr", "-1"], "lr must be a finite number > 0"),
    (["train", "resnet20", "--schedule", "0.9,0.5"], "schedule must be one of piecewise, cosine, constant"),
    (["train", "resnet20", "--precision", "float64"], "invalid choice"),
    (["train", "resnet20", "--steps-per-execution", "0"], "steps_per_execution must be a positive integer; got 0"),
    (["train", "resnet20", "--jit-compile", "maybe"], "invalid choice: 'maybe'"),
    (["train", "densenet40", "--zero-init-residual"], "zero_init_residual is not an option of densenet40"),
    (["train"], "required: model"),
    (["nosuch"], "invalid choice"),
    (["evaluate", "/nonexistent"], "no SavedModel in /nonexistent"),
    # bench checks every argument before building anything (issue 11: tracebacks)
    (["bench", "--mode", "nonsense"], "--mode must be train, infer or train,infer; got 'nonsense'"),
    (["bench", "--models", "resnet20,nosuch"], "unknown model 'nosuch'; known models: resnet18"),
    (["bench", "--batch", "0"], "argument --batch: must be a positive integer; got '0'"),
    (["bench", "--size", "-3"], "argument --size: must be a positive integer"),
    (["bench", "--size", "2"], "--size must be at least 4 for resnet20; got 2"),
    (["bench", "--models", "resnet20", "--compare-keras"], "keras.applications has no resnet20"),
    (["bench", "--threads", "two,1"], "--threads must be INTRA,INTER"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, reason):
    assert reason in _error(capsys, argv)


def test_dataset_missing_offline_says_how_to_point_at_a_local_copy(capsys, tmp_path):
    err = _error(capsys, ["train", "resnet20", "--dataset", "cifar100", "--data-dir", str(tmp_path)])
    assert "'cifar100' is not prepared in" in err and "--data-dir" in err and "TFDS_DATA_DIR" in err


@requires_cifar10
def test_out_dir_with_foreign_files_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", real_data_dir())
    (tmp_path / "notes.txt").write_text("mine")
    err = _error(capsys, ["train", "resnet20", "--out", str(tmp_path)])
    assert "is not empty and holds no run.json" in err
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("model, option, expected", [
    ("resnet20", ["--dropout", "0.3"], "dropout is not an option of resnet20: only the CIFAR Wide ResNets"),
    # issue 11: "build_densenet() got an unexpected keyword argument 'stochastic_depth'"
    ("densenet40", ["--stochastic-depth", "0.5"], "stochastic_depth is not an option of densenet40: only the "
                                                  "residual families (resnet, preact_resnet, wrn, resnext) take it"),
])
def test_option_the_factory_rejects_is_a_usage_error_and_leaves_no_run(capsys, tmp_path, model, option, expected):
    from tests._data_dir import MISSING, real_data_dir
    if real_data_dir() is None:
        pytest.skip(MISSING)
    out = tmp_path / "run"
    err = _error(capsys, ["train", model, *option, "--out", str(out), "--data-dir", real_data_dir()])
    assert expected in err
    assert not out.exists()


def test_models_lists_the_registry(capsys):
    assert main(["models", "--dataset", "cifar"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["name", "factory", "family", "input", "params"]
    assert any(line.startswith("resnet20 ") and "269,722" in line for line in lines)
    assert not any(line.startswith("resnet50 ") for line in lines)


def test_models_shows_a_missing_count_as_a_dash(capsys, monkeypatch):
    """A registered model not yet counted in counts.py (params and FLOPs None) is listed with "-", not a TypeError."""
    import dataclasses

    from keras_convnets.models import registry

    monkeypatch.setitem(registry.REGISTRY, "resnet20",
                        dataclasses.replace(registry.REGISTRY["resnet20"], params=None, flops=None))
    assert main(["models", "--dataset", "cifar"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("resnet20 "))
    assert row.split()[4:6] == ["-", "-"]


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["predict"], ["export"], ["models"]])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main(command + ["--help"])
    assert exit_info.value.code == 0
    assert "usage: keras-convnets" in capsys.readouterr().out


def test_console_script_exit_status():
    result = subprocess.run([sys.executable, "-m", "keras_convnets.cli", "train", "nosuch"], capture_output=True,
                            text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("keras-convnets: error: unknown model 'nosuch'")


def test_folder_that_holds_no_class_folders_is_one_line(capsys, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"\x89PNG")
    err = _error(capsys, ["train", "resnet18", "--dataset", str(tmp_path / "photos"), "--out", str(tmp_path / "run")])
    assert "has no class sub-folders" in err
    assert not (tmp_path / "run").exists()


NOISE = ("cuInit", "cpu_feature_guard", "oneDNN custom operations", "absl::InitializeLog")


@pytest.mark.parametrize("user_level, expected", [(None, "2"), ("0", "0")])
def test_tensorflow_start_up_lines_are_hidden_unless_the_user_sets_the_level(tmp_path, user_level, expected):
    """The command sets TF_CPP_MIN_LOG_LEVEL=2 before TensorFlow loads, and drops the start-up lines TensorFlow logs
    before it reads it (and the cuInit error of a machine without a CUDA driver); a level the user set stays theirs.
    convert builds the model (TensorFlow starts its devices) before refusing the missing file."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if user_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = user_level
    script = ("import os; from keras_convnets import cli; "
              "status = cli.main(['convert', 'missing.pth', 'resnet18', '--out', 'x.weights.h5']); "
              "print(status, os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert done.stdout.split() == ["2", expected], done.stderr
    if user_level is None:
        assert not [line for line in done.stderr.splitlines() if any(word in line for word in NOISE)], done.stderr
        assert done.stderr.strip().splitlines() == ["keras-convnets: error: SOURCE must be a checkpoint file or "
                                                    "'torchvision' / 'timm[:tag]'; got 'missing.pth'"]
