"""tensorflow-datasets input pipelines for the CIFAR papers' datasets, and the per-channel statistics the models
normalize with.

The pipeline is the papers' standard one: decode → cache → shuffle over the whole split → per-image augmentation
(zero-pad 4 pixels, random 32×32 crop, random horizontal flip: He et al. 2016, §4.2) → batch → prefetch.
Every image of a batch gets its own crop and flip: the randomness is stateless, seeded per example from
``tf.data.Dataset.random(seed)``, so a seeded run sees the same images in the same order with the same crops.
(Keras' ``RandomCrop`` layer would crop a whole batch at one place.)

Normalization is *not* done here: it is the first layer of the trained model (:func:`preprocessing_model`), so the
exported SavedModel takes raw ``uint8`` images. TensorFlow is imported only when a pipeline is built, so the CLI
can check a dataset name without it.
"""

import dataclasses
import os
from typing import Optional, Tuple

from keras_convnets import checks
from keras_convnets.training.transforms import augment, chain, extra_seed  # noqa: F401 -- their old home

#: The environment variable tfds reads its data directory from.
DATA_DIR_ENV = "TFDS_DATA_DIR"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A supported tfds dataset. ``mean``/``std``: per-channel statistics of the train split's pixels in [0, 1]
    (population std over every pixel), computed from the full train split; ``augment``: whether the papers train on
    it with pad-crop-flip (CIFAR: yes; SVHN: no, WRN and DenseNet train SVHN without augmentation)."""

    name: str
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    source_host: str             # where tfds downloads it from (probed before a download is attempted)
    augment: bool = True
    train_split: str = "train"
    test_split: str = "test"


DATASETS = {spec.name: spec for spec in [
    DatasetSpec("cifar10", mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
                source_host="www.cs.toronto.edu"),
    DatasetSpec("cifar100", mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
                source_host="www.cs.toronto.edu"),
    DatasetSpec("svhn_cropped", mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
                source_host="ufldl.stanford.edu", augment=False),
]}


class DatasetUnavailableError(ValueError):
    """The dataset is unknown, or tfds has no prepared copy of it and cannot download one."""


def dataset_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name``, or a :class:`DatasetUnavailableError` listing the supported ones."""
    if name not in DATASETS:
        raise DatasetUnavailableError(f"unknown dataset {name!r}; supported datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def resolve_data_dir(data_dir: Optional[str] = None) -> Optional[str]:
    """``data_dir``, else ``$TFDS_DATA_DIR``, else None (tfds' own default, ``~/tensorflow_datasets``)."""
    return data_dir or os.environ.get(DATA_DIR_ENV) or None


def _reachable(host: str, timeout: float = 5.0) -> bool:
    """Whether an HTTPS connection to ``host`` opens: offline, tfds' own download retries for minutes first."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _builder(name: str, data_dir: Optional[str], download: bool = False):
    """The prepared tfds builder of ``name``; with ``download=True`` tfds downloads and prepares a missing one, as
    ``tfds.load`` does, unless its source cannot be reached (then the error says how to use a local copy)."""
    import tensorflow_datasets as tfds

    spec = dataset_spec(name)
    data_dir = resolve_data_dir(data_dir)
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if download and _reachable(spec.source_host):
        print(f"tfds: downloading and preparing {name} into {builder.data_dir}", flush=True)
        builder.download_and_prepare()
        return builder
    where = data_dir or "tfds' default directory (~/tensorflow_datasets)"
    why = f" and {spec.source_host} cannot be reached to download it" if download else ""
    how = "" if download else ", or let it download (download=True) on a machine with internet"
    raise DatasetUnavailableError(
        f"dataset {name!r} is not prepared in {where}{why}; point --data-dir (or {DATA_DIR_ENV}, or data_dir=) "
        f"at a tensorflow_datasets directory holding {name}/{how}")


def dataset_info(name: str, data_dir: Optional[str] = None, download: bool = False):
    """tfds' ``DatasetInfo`` of a prepared dataset (class names, split sizes, image shape)."""
    return _builder(name, data_dir, download).info


def class_names(info) -> list:
    return list(info.features["label"].names)


def load_split(name: str, split: str, data_dir: Optional[str] = None, download: bool = False):
    """The raw ``(uint8 image, int64 label)`` examples of one split, in file order, with our dataset options."""
    from keras_convnets.training import performance

    builder = _builder(name, data_dir, download)
    ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    return ds.with_options(performance.dataset_options())


def load_dataset(name: str, split: str = "train", *, batch_size: int = 128, training: bool = True,
                 augmentation: Optional[bool] = None, seed: int = 0, data_dir: Optional[str] = None,
                 download: bool = False, cache: bool = True, drop_remainder: bool = False, per_image=None):
    """A batched ``(uint8 images [B, H, W, 3], int64 labels [B])`` pipeline of one split.

    ``training=True``: cached, shuffled over the whole split (again each epoch, reproducibly from ``seed``) and
    augmented per image when ``augmentation`` (default: the dataset's :class:`DatasetSpec`). ``training=False``:
    file order, no augmentation. Images stay uint8; the model normalizes them. ``per_image``: a further
    ``(uint8 image, seed) -> uint8 image`` op after pad-crop-flip in training (the modern recipe's,
    :mod:`keras_convnets.training.augment`), seeded by :func:`extra_seed` of the image's seed, so the crops and
    flips stay those of a run without it.
    """
    import tensorflow as tf

    from keras_convnets.training import performance

    spec = dataset_spec(name)
    checks.positive_int("batch_size", batch_size)
    checks.one_of("augmentation (None: the dataset's usual setting)", augmentation, (None, True, False))
    augmentation = spec.augment if augmentation is None else augmentation
    ds = load_split(name, split, data_dir, download)
    if cache:
        ds = ds.cache()
    if training:
        size = int(ds.cardinality())
        ds = ds.shuffle(size if size > 0 else 50_000, seed=seed, reshuffle_each_iteration=True)
        if augmentation or per_image is not None:
            transform = chain(augment if augmentation else None, per_image)
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
            ds = tf.data.Dataset.zip((ds, seeds)).map(
                lambda example, s: (transform(example[0], s), example[1]), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    return ds.with_options(performance.dataset_options())


def compute_statistics(name: str, split: str = "train", data_dir: Optional[str] = None):
    """Per-channel mean and std (pixels in [0, 1]) of a split, computed in one streaming float64 pass."""
    import numpy as np

    total, total_sq, count = np.zeros(3), np.zeros(3), 0
    for images, _ in load_split(name, split, data_dir).batch(1024).as_numpy_iterator():
        pixels = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
        total += pixels.sum(0)
        total_sq += (pixels ** 2).sum(0)
        count += pixels.shape[0]
    mean = total / count
    return tuple(mean), tuple(np.sqrt(total_sq / count - mean ** 2))


def preprocessing_model(model, spec: DatasetSpec, image_shape, name=None):
    """``model`` behind its input preprocessing: uint8 images → float32 → per-channel (x/255 - mean) / std.

    The returned model takes raw ``uint8 [B, H, W, 3]`` images, which is what the SavedModel serves.
    """
    from keras_convnets.models.backend import keras

    mean = [255.0 * m for m in spec.mean]
    variance = [(255.0 * s) ** 2 for s in spec.std]
    images = keras.Input(shape=tuple(image_shape), dtype="uint8", name="images")
    x = keras.layers.Normalization(mean=mean, variance=variance, dtype="float32", name="normalize")(images)
    return keras.Model(images, model(x), name=name or model.name)
