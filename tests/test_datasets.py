"""Datasets by name or path and the ImageNet-style pipeline: image folders, any tfds dataset, crops, bad inputs."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_convnets.data import catalog, folders, pipelines, transforms
from tests._data_dir import real_data_dir, requires_cifar10

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(image))


def write_photo_folder(root, per_class=20, split="test"):
    """``per_class`` real CIFAR-10 images of each class from ``split`` as PNG files in class folders under ``root``:
    every third upscaled to 64x64, one grayscale, one RGBA, plus a corrupt ``.png`` and a text file. Returns
    ``root``."""
    split = tfds.builder("cifar10", data_dir=real_data_dir()).as_dataset(split, as_supervised=True,
                                                                       shuffle_files=False)
    counts = {}
    for image, label in split.as_numpy_iterator():
        if counts.get(label, 0) < per_class:
            index = counts[label] = counts.get(label, 0) + 1
            if index % 3 == 0:
                image = tf.cast(tf.round(tf.image.resize(image, (64, 64))), tf.uint8).numpy()
            if (label, index) == (0, 1):
                image = image[..., :1]                                        # grayscale
            if (label, index) == (1, 1):
                image = np.concatenate([image, np.full_like(image[..., :1], 200)], axis=-1)  # RGBA
            _write_png(os.path.join(root, CIFAR10_CLASSES[label], f"{index:02d}.png"), image)
        if len(counts) == 10 and min(counts.values()) == per_class:
            break
    with open(os.path.join(root, "cat", "broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    with open(os.path.join(root, "dog", "notes.txt"), "w") as f:
        f.write("not an image")
    return root


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """200 real CIFAR-10 test images as PNG files in class folders (:func:`write_photo_folder`)."""
    if real_data_dir() is None:
        pytest.skip("the real CIFAR-10 subset is absent (TFDS_DATA_DIR)")
    return write_photo_folder(str(tmp_path_factory.mktemp("photos")))


def test_folder_dataset_classes_counts_and_bad_file(photo_folder):
    description = catalog.describe(photo_folder, image_size=64)
    assert description.kind == "folder" and description.class_names == CIFAR10_CLASSES
    assert description.train.count == 180 and description.evaluation.count == 20  # 200 readable, 10% per class
    assert np.bincount(description.evaluation.labels, minlength=10).tolist() == [2] * 10
    assert not set(description.train.files) & set(description.evaluation.files)
    assert "skipped 1 unreadable image file(s) of 201: cat/broken.png (corrupt or truncated PNG)" \
        in description.skipped_report
    assert "held-out 10% of each class (20 images, split seed 0)" in description.split_note
    assert description.augmentation == "imagenet" and description.statistics.source.startswith("computed from 180")
    assert description.image_format == "PNG"
    # The subset's pixels have CIFAR-10's statistics (upscaling barely changes them).
    np.testing.assert_allclose(description.mean, catalog.dataset_spec("cifar10").mean, atol=0.03)
    np.testing.assert_allclose(description.std, catalog.dataset_spec("cifar10").std, atol=0.03)
    images, labels = next(iter(pipelines.train_dataset(description, 16, seed=0)))
    assert images.dtype == tf.uint8 and images.shape == (16, 64, 64, 3) and labels.dtype == tf.int64
    evaluated = [(x.numpy(), y.numpy()) for x, y in pipelines.eval_dataset(description, 8)]
    assert sum(len(y) for _, y in evaluated) == 20
    assert np.concatenate([y for _, y in evaluated]).tolist() == list(description.evaluation.labels)


def test_folder_dataset_at_32_uses_cifar_augmentation_and_mixed_sizes(photo_folder):
    description = catalog.describe(photo_folder, image_size=32, statistics={"mean": [0.5] * 3, "std": [0.25] * 3,
                                                                              "source": "recorded"})
    assert description.augmentation == "cifar" and description.statistics.source == "recorded"
    sizes = [int(x.shape[0]) for x, _ in pipelines.train_dataset(description, 64, seed=1)]
    assert sum(sizes) == 180
    images, _ = next(iter(pipelines.eval_dataset(description, 200)))
    assert images.shape == (20, 32, 32, 3)


def test_grayscale_and_rgba_files_become_rgb(photo_folder):
    grey = transforms.decode_rgb(tf.io.read_file(os.path.join(photo_folder, "airplane", "01.png"))).numpy()
    assert grey.shape == (32, 32, 3) and np.array_equal(grey[..., 0], grey[..., 2])
    rgba = transforms.decode_rgb(tf.io.read_file(os.path.join(photo_folder, "automobile", "01.png"))).numpy()
    assert rgba.shape == (32, 32, 3)


def _synthetic_folder(root, classes, per_class=3, size=(40, 48)):
    rng = np.random.default_rng(0)
    for name in classes:
        for i in range(per_class):
            _write_png(os.path.join(root, name, f"{i}.png"), rng.integers(0, 256, size + (3,), dtype=np.uint8))
    return root


def test_train_and_test_subfolders_are_the_splits(tmp_path):
    _synthetic_folder(str(tmp_path / "train"), ["b", "a"], per_class=3)
    _synthetic_folder(str(tmp_path / "test"), ["a"], per_class=2)
    description = catalog.describe(str(tmp_path), image_size=32, statistics=catalog.imagenet_statistics("x"))
    assert description.class_names == ("a", "b")
    assert (description.train.count, description.evaluation.count) == (6, 2)
    assert description.evaluation.labels == (0, 0) and description.evaluation.holdout is None
    assert "training on train/ (6 images), evaluating on test/ (2)" in description.split_note


@pytest.mark.parametrize("layout, message", [
    ("file", "is not a folder"),
    ("no_classes", "has no class sub-folders"),
    ("one_class", r"holds one class \('only'\)"),
    ("empty_class", r"class folder\(s\) 'empty' in .* hold no readable image"),
    ("test_extra_class", "has classes the training folder lacks: c"),
])
def test_bad_folders_give_one_line_errors(tmp_path, layout, message):
    root = str(tmp_path / "data")
    os.makedirs(root)
    if layout == "file":
        root = os.path.join(root, "x.png")
        open(root, "w").close()
    elif layout == "no_classes":
        _write_png(os.path.join(root, "a.png"), np.zeros((8, 8, 3), np.uint8))
    elif layout == "one_class":
        _synthetic_folder(root, ["only"])
    elif layout == "empty_class":
        _synthetic_folder(root, ["full"])
        os.makedirs(os.path.join(root, "empty"))
        open(os.path.join(root, "empty", "readme.txt"), "w").close()
    else:
        _synthetic_folder(os.path.join(root, "train"), ["a", "b"])
        _synthetic_folder(os.path.join(root, "test"), ["c"])
    with pytest.raises(ValueError, match=message) as error:
        catalog.describe(root, statistics=catalog.imagenet_statistics("x"))
    assert "\n" not in str(error.value)


def test_unknown_tfds_name_suggests_the_closest(monkeypatch):
    with pytest.raises(catalog.UnknownDatasetError, match="closest tfds names: oxford_flowers102") as error:
        catalog.describe("oxford_flowers_102")
    assert "\n" not in str(error.value)
    with pytest.raises(catalog.UnknownDatasetError, match="closest tfds names: cifar10, cifar100"):
        catalog.describe("cifar_10")
    with pytest.raises(catalog.UnknownDatasetError, match="'no/such/folder' is not a folder"):
        catalog.describe("no/such/folder")


def _write_tfds_metadata(data_dir, name, splits):
    """What ``tfds.testing.mock_data`` needs to know a dataset's splits (tfds does not ship it): its builder's info
    with split sizes, written where a prepared dataset's would be."""
    builder = tfds.builder(name, data_dir=data_dir)
    builder.info.set_splits(tfds.core.SplitDict([tfds.core.SplitInfo(name=split, shard_lengths=[count], num_bytes=0)
                                                 for split, count in splits.items()]))
    os.makedirs(builder.data_dir, exist_ok=True)
    builder.info.write_to_directory(builder.data_dir)


def test_tfds_dataset_runs_the_imagenet_pipeline_at_224(tmp_path):
    data_dir = str(tmp_path)
    _write_tfds_metadata(data_dir, "oxford_flowers102", {"train": 12, "validation": 12, "test": 12})
    with tfds.testing.mock_data(num_examples=12, data_dir=data_dir, policy=tfds.testing.MockPolicy.USE_FILES):
        description = catalog.describe("oxford_flowers102", data_dir=data_dir, pretrained="densenet121")
        assert (description.num_classes, description.image_size, description.augmentation) == (102, 224, "imagenet")
        assert description.evaluation.source == "test" and description.statistics.mean == (0.485, 0.456, 0.406)
        batches = list(pipelines.train_dataset(description, 4, seed=0).take(2))
        evaluation = list(pipelines.eval_dataset(description, 4).take(1))
    for images, labels in batches + evaluation:
        assert images.shape == (4, 224, 224, 3) and images.dtype == tf.uint8
        assert labels.dtype == tf.int64 and all(0 <= int(v) < 102 for v in labels)


def test_tfds_splits_validation_then_held_out_fraction(tmp_path):
    data_dir = str(tmp_path)
    _write_tfds_metadata(data_dir, "imagenet2012", {"train": 30, "validation": 10})
    _write_tfds_metadata(data_dir, "tf_flowers", {"train": 40})
    mock = {"data_dir": data_dir, "policy": tfds.testing.MockPolicy.USE_FILES}
    with tfds.testing.mock_data(num_examples=10, **mock):
        imagenet = catalog.describe("imagenet2012", data_dir=data_dir, pretrained="resnet50")
    assert imagenet.evaluation.source == "validation" and "(it has no test split)" in imagenet.split_note
    assert imagenet.statistics.reverse_channels  # keras.applications' ResNet50 weights take BGR
    with tfds.testing.mock_data(num_examples=40, **mock):
        flowers = catalog.describe("tf_flowers", data_dir=data_dir, image_size=48)
        assert (flowers.train.count, flowers.evaluation.count) == (36, 4)
        assert "held-out 10% of train (4 images, split seed 0), training on the other 36" in flowers.split_note
        assert flowers.statistics.source == "computed from 36 training images"
        held = [x for x, _ in pipelines.eval_dataset(flowers, 4)]
        kept = [x for x, _ in pipelines.train_dataset(flowers, 8, seed=0)]
    assert sum(int(x.shape[0]) for x in held) == 4 and sum(int(x.shape[0]) for x in kept) == 36


def test_eval_crop_is_the_centre_of_the_short_side_resized():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 384, 3), dtype=np.uint8)  # short side already 224 / 0.875: no resize
    np.testing.assert_array_equal(transforms.eval_transform(image, 224).numpy(), image[16:240, 80:304])
    # Centre and border differ: a white band across a black image; resized to 256x426, the centre 224x224 keeps
    # about 10 black rows above and below it, the same on both sides, and no black at the left or right.
    framed = np.zeros((300, 500, 3), np.uint8)
    framed[30:270, 80:420] = 255
    out = transforms.eval_transform(framed, 224).numpy().astype(int)
    assert out.shape == (224, 224, 3) and out[112, 112].tolist() == [255] * 3
    assert out[12:212].min() == 255 and out[:8].max() == 0 and out[-8:].max() == 0
    np.testing.assert_allclose(out, out[::-1, ::-1], atol=1)  # symmetric: the crop is centred
    # The serving form: a batch of any size and channel count.
    grey = np.repeat(framed[None, ..., :1], 2, axis=0)
    np.testing.assert_array_equal(transforms.serving_transform(grey, 224).numpy()[1], out)
    small = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(transforms.eval_transform(small, 32, 1.0).numpy(), small)


def test_random_resized_crop_windows_follow_the_paper_ranges():
    windows = np.array([[int(v) for v in transforms.random_resized_crop_window(300, 400, tf.constant([s, 1],
                                                                                                     tf.int64))]
                        for s in range(100)])
    top, left, height, width = windows.T
    area, ratio = height * width / (300 * 400), width / height
    assert area.min() >= 0.07 and area.max() <= 1.0 and area.max() - area.min() > 0.5
    assert ratio.min() >= 0.74 and ratio.max() <= 1.34
    assert (top >= 0).all() and (top + height <= 300).all() and (left + width <= 400).all()
    assert len({tuple(w) for w in windows}) == 100
    # No candidate fits a 10x1000 strip: the centre crop at the widest ratio in range.
    assert [int(v) for v in transforms.random_resized_crop_window(10, 1000, tf.constant([0, 0], tf.int64))] == \
        [0, 493, 10, 13]


def test_jpeg_is_decoded_cropped_to_the_same_crop():
    image = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    encoded = tf.io.encode_jpeg(image, quality=95)
    seed = tf.constant([5, 6], tf.int64)
    cropped = transforms.decode_train_transform(encoded, 64, seed).numpy()
    whole = transforms.train_transform(tf.io.decode_jpeg(encoded), 64, seed).numpy()
    assert np.mean(cropped != whole) < 0.02 and np.mean(np.abs(whole.astype(int) - cropped)) < 0.5


def test_crops_differ_per_image_and_a_seeded_run_repeats(tmp_path):
    image = np.random.default_rng(2).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    for name in ("a", "b"):
        for i in range(8):
            _write_png(str(tmp_path / name / f"{i}.png"), image)  # 16 copies of one image
    description = catalog.describe(str(tmp_path), image_size=48, statistics=catalog.imagenet_statistics("x"),
                                    holdout_fraction=0.2)

    def epochs(seed):
        pipeline = pipelines.train_dataset(description, 16, seed=seed)
        return [np.concatenate([x.numpy() for x, _ in pipeline]) for _ in range(2)]

    first, again = epochs(3), epochs(3)
    assert len({crop.tobytes() for crop in first[0]}) == len(first[0]) == 12
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1]), "each epoch must draw new crops"
    assert not np.array_equal(first[0], epochs(4)[0])


@requires_cifar10
def test_cifar_datasets_keep_todays_pipeline():
    description = catalog.describe("cifar10", data_dir=real_data_dir())
    assert (description.image_size, description.augmentation, description.evaluation.source) == (32, "cifar", "test")
    assert description.mean == catalog.dataset_spec("cifar10").mean
    ours = next(iter(pipelines.train_dataset(description, 32, seed=5)))[0].numpy()
    todays = next(iter(pipelines.load_dataset("cifar10", batch_size=32, seed=5, data_dir=real_data_dir())))[0].numpy()
    np.testing.assert_array_equal(ours, todays)


def test_holdout_is_stratified_and_seeded():
    labels = [0] * 10 + [1] * 3 + [2] * 1
    held = folders.holdout_indices(labels, 0.2, seed=0)
    assert np.bincount(np.asarray(labels)[held], minlength=3).tolist() == [2, 1, 0]
    np.testing.assert_array_equal(held, folders.holdout_indices(labels, 0.2, seed=0))
    assert not np.array_equal(held, folders.holdout_indices(labels, 0.2, seed=1))


SERVING_CHECK = """
import sys
import numpy as np
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
rng = np.random.default_rng(0)
for shape in [(2, 40, 60, 3), (1, 300, 200, 1), (3, 32, 32, 4), (0, 50, 50, 3)]:
    out = served(images=tf.constant(rng.integers(0, 256, shape, dtype=np.uint8)))["images"]
    print(tuple(out.shape), out.dtype.name)
try:
    served(images=tf.zeros((1, 8, 8, 5), tf.uint8))
except tf.errors.InvalidArgumentError as error:
    print("error:", error.message.splitlines()[0])
"""


def test_serving_transform_works_in_a_reloaded_saved_model(tmp_path):
    """The export's use: a signature taking uint8 images of any size and 1-4 channels, reloaded in a process that
    never imports keras_convnets."""
    import subprocess
    import sys

    module = tf.Module()
    module.serve = tf.function(lambda images: {"images": transforms.serving_transform(images, 24)},
                               input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images")])
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    result = subprocess.run([sys.executable, "-c", SERVING_CHECK, str(tmp_path)], capture_output=True, text=True,
                            timeout=300, cwd=str(tmp_path), check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[:4] == ["(2, 24, 24, 3) uint8", "(1, 24, 24, 3) uint8", "(3, 24, 24, 3) uint8",
                         "(0, 24, 24, 3) uint8"]
    assert lines[4].startswith("error: ") and "images need 1 to 4 channels; got] [5]" in lines[4]


def test_crop_decoding_jpegs_gives_the_same_batches(tmp_path):
    rng = np.random.default_rng(3)
    for name in ("a", "b"):
        os.makedirs(tmp_path / name)
        for i in range(4):
            image = rng.integers(0, 256, (50 + 10 * i, 70, 3), dtype=np.uint8)
            tf.io.write_file(str(tmp_path / name / f"{i}.jpg"), tf.io.encode_jpeg(image))
    description = catalog.describe(str(tmp_path), image_size=40, statistics=catalog.imagenet_statistics("x"))
    assert description.image_format == "JPEG"
    whole = next(iter(pipelines.train_dataset(description, 8, seed=1, crop_decode_jpeg=False)))[0].numpy()
    cropped = next(iter(pipelines.train_dataset(description, 8, seed=1)))[0].numpy()
    # The same crops; only pixels at a window's edge may differ (chroma upsampling across the edge): 1-2.4% of them,
    # depending on the windows drawn (a global TF seed set by an earlier test changes them). Different crops would
    # differ almost everywhere.
    assert np.mean(whole != cropped) < 0.04 and np.mean(np.abs(whole.astype(int) - cropped)) < 0.5
