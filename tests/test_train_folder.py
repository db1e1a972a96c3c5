"""End to end on a folder of real CIFAR-10 PNGs (32x32 and 64x64, one grayscale, one RGBA, one corrupt file):
`keras-convnets train resnet18 --dataset FOLDER --image-size 32 --epochs 2` learns (from scratch at a constant 0.02:
the ImageNet recipe's 0.1 and its steps over two epochs of 4,050 images barely leave chance), `evaluate` reads the
folder, and the exported SavedModel, reloaded in a process that never imports keras_convnets, classifies raw images
of any size and 1-4 channels. One run (~1 min on 2 cores) serves every test of this module."""

import json
import os
import subprocess
import sys

import pytest

from tests._data_dir import real_data_dir, requires_cifar10
from tests.test_datasets import write_photo_folder

pytestmark = requires_cifar10

TIMEOUT = 900
PER_CLASS = 450  # 4,500 train-split images; the run holds out 10% of each class


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = write_photo_folder(str(tmp_path_factory.mktemp("photos")), per_class=PER_CLASS, split="train")
    out = str(tmp_path_factory.mktemp("train") / "resnet18")
    env = dict(os.environ, TFDS_DATA_DIR=real_data_dir(), PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "keras_convnets.cli", "train", "resnet18", "--dataset", folder,
               "--image-size", "32", "--epochs", "2", "--batch-size", "32", "--lr", "0.02", "--schedule", "constant",
               "--out", out]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    return dict(folder=folder, out=out, result=result, env=env)


def test_train_on_a_folder_exits_0_and_states_its_data_first(run):
    result = run["result"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Runtime: ")
    data_lines = [line for line in lines[:4] if "held-out 10% of each class" in line or "skipped" in line]
    assert len(data_lines) == 2, lines[:5]
    assert "held-out 10% of each class (450 images, split seed 0), training on the other 4,050" in data_lines[0]
    assert "skipped 1 unreadable image file(s)" in data_lines[1] and "cat/broken.png" in data_lines[1]


def test_run_json_records_the_data_and_the_run_learns(run):
    record = json.load(open(os.path.join(run["out"], "run.json")))
    assert record["status"] == "complete"
    assert record["arguments"]["dataset"] == os.path.abspath(run["folder"])
    assert record["arguments"]["image_size"] == 32
    summary = record["data"]
    assert (summary["kind"], summary["image_size"], summary["augmentation"], summary["crop_fraction"]) == \
        ("folder", 32, "cifar", 1.0)
    assert summary["statistics"]["source"] == "computed from 2,000 training images"
    assert summary["evaluation"]["count"] == 450
    print(f"held-out accuracy after 2 epochs: {record['test_accuracy']:.3f}")
    # Chance is 0.10; on 450 images 0.18 is 5.6 sigma above it (0.32 measured: from scratch, 2 epochs of 4,050).
    assert record["test_accuracy"] > 0.18, record["test_accuracy"]


def test_evaluate_reads_the_folder_as_training_did(run):
    env = run["env"]
    result = subprocess.run([sys.executable, "-m", "keras_convnets.cli", "evaluate", run["out"]],
                            capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-2000:]
    recorded = json.load(open(os.path.join(run["out"], "run.json")))["test_accuracy"]
    assert f"{run['folder']} held out part accuracy: {recorded:.4f} (450 images)" in result.stdout


SERVING_CHECK = """
import json
import sys

import numpy as np
import tensorflow as tf

saved = tf.saved_model.load(sys.argv[1])
serve, preprocessed = saved.signatures["serving_default"], saved.signatures["preprocessed"]
spec = serve.structured_input_signature[1]["images"]
images = np.load(sys.argv[2])        # held-out 32x32 RGB images
labels = np.load(sys.argv[3])


def probabilities(fn, x):
    return fn(images=tf.constant(x, tf.uint8))["probabilities"].numpy()


big = tf.cast(tf.round(tf.image.resize(images, (64, 64))), tf.uint8).numpy()
back = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(big, (32, 32), antialias=True)), 0, 255), tf.uint8)
grey = images[..., :1]
rgba = np.concatenate([images, np.full_like(images[..., :1], 77)], -1)
result = {
    "signature": [spec.shape.rank, spec.dtype.name],
    "same_size_unchanged": float(np.abs(probabilities(serve, images) - probabilities(preprocessed, images)).max()),
    "bigger_is_resized": float(np.abs(probabilities(serve, big) - probabilities(preprocessed, back.numpy())).max()),
    "grey_is_repeated": float(np.abs(probabilities(serve, grey)
                                     - probabilities(preprocessed, np.repeat(grey, 3, -1))).max()),
    "alpha_is_dropped": float(np.abs(probabilities(serve, rgba) - probabilities(preprocessed, images)).max()),
    "accuracy_32": float((probabilities(serve, images).argmax(-1) == labels).mean()),
    "accuracy_64": float((probabilities(serve, big).argmax(-1) == labels).mean()),
    "empty": list(probabilities(serve, np.zeros((0, 50, 70, 3), np.uint8)).shape),
}
try:
    probabilities(serve, np.zeros((1, 32, 32, 5), np.uint8))
    result["five_channels"] = "accepted"
except tf.errors.InvalidArgumentError as error:
    result["five_channels"] = [line for line in error.message.splitlines() if "channels" in line][:1]
print(json.dumps(result))
"""


def test_saved_model_classifies_raw_images_of_any_size_and_channels(run, tmp_path):
    import numpy as np
    import tensorflow as tf

    summary = json.load(open(os.path.join(run["out"], "run.json")))["data"]
    assert summary["evaluation"]["holdout"] == "held out"
    from keras_convnets.data import catalog

    description = catalog.describe(run["folder"], image_size=32, statistics=summary["statistics"])
    images, labels = [], []
    for path, label in zip(description.evaluation.files, description.evaluation.labels):
        image = tf.io.decode_png(tf.io.read_file(path), channels=3).numpy()
        if image.shape == (32, 32, 3):
            images.append(image)
            labels.append(label)
    np.save(tmp_path / "images.npy", np.stack(images))
    np.save(tmp_path / "labels.npy", np.asarray(labels))
    result = subprocess.run([sys.executable, "-c", SERVING_CHECK, os.path.join(run["out"], "saved_model"),
                             str(tmp_path / "images.npy"), str(tmp_path / "labels.npy")], capture_output=True,
                            text=True, timeout=300, cwd=str(tmp_path), env=dict(run["env"], PYTHONPATH=""))
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    print(found)
    assert found["signature"] == [None, "uint8"]  # any shape in: the signature checks it and says what it takes
    assert found["same_size_unchanged"] == 0.0
    assert found["bigger_is_resized"] < 1e-5
    assert found["grey_is_repeated"] == 0.0 and found["alpha_is_dropped"] == 0.0
    assert found["accuracy_32"] > 0.18 and found["accuracy_64"] > 0.18, found
    assert found["empty"] == [0, 10]
    assert len(found["five_channels"]) == 1 and "images need 1 to 4 channels" in found["five_channels"][0], found
