"""The CIFAR papers' datasets by name: the names users and notebooks call, and the model's input normalization.

``load_dataset("cifar10")`` is the papers' standard pipeline: decode → cache → shuffle over the whole split →
per-image augmentation (zero-pad 4 pixels, random 32×32 crop, random horizontal flip: He et al. 2016, §4.2) → batch →
prefetch. Every image of a batch gets its own crop and flip: the randomness is stateless, seeded per example from
``tf.data.Dataset.random(seed)``, so a seeded run sees the same images in the same order with the same crops.
(Keras' ``RandomCrop`` layer would crop a whole batch at one place.)

The code is the data layer's, :mod:`keras_convnets.training.datasets` (the table :data:`DATASETS`, the tfds builder
helper, the pipelines, the statistics), and the per-image ops are :mod:`keras_convnets.training.transforms`'
(:func:`augment`, :func:`chain`, :func:`extra_seed`); this module names them as it always has and keeps only the
by-name calls of them.

Normalization is *not* done in the pipeline: it is the first layer of the trained model (:func:`preprocessing_model`),
so the exported SavedModel takes raw ``uint8`` images. TensorFlow is imported only when a pipeline is built, so the
CLI can check a dataset name without it.
"""

from typing import Optional

from keras_convnets import checks
from keras_convnets.training import datasets
from keras_convnets.training.datasets import (
    DATA_DIR_ENV,
    DATASETS,
    DatasetSpec,
    DatasetUnavailableError,
    class_names,
    dataset_info,
    dataset_spec,
    load_split,
    resolve_data_dir,
)
from keras_convnets.training.transforms import augment, chain, extra_seed

__all__ = ["DATA_DIR_ENV", "DATASETS", "DatasetSpec", "DatasetUnavailableError", "augment", "chain", "class_names",
           "compute_statistics", "dataset_info", "dataset_spec", "extra_seed", "load_dataset", "load_split",
           "preprocessing_model", "resolve_data_dir"]


def load_dataset(name: str, split: str = "train", *, batch_size: int = 128, training: bool = True,
                 augmentation: Optional[bool] = None, seed: int = 0, data_dir: Optional[str] = None,
                 download: bool = False, cache: bool = True, drop_remainder: bool = False, per_image=None,
                 settings=None):
    """A batched ``(uint8 images [B, H, W, 3], int64 labels [B])`` pipeline of one split of a dataset of
    :data:`DATASETS`: :func:`keras_convnets.training.datasets.cifar_pipeline` of :func:`load_split`.

    ``training=True``: cached, shuffled over the whole split (again each epoch, reproducibly from ``seed``) and
    augmented per image when ``augmentation`` (default: the dataset's :class:`DatasetSpec`). ``training=False``:
    file order, no augmentation. Images stay uint8; the model normalizes them. ``per_image``: a further
    ``(uint8 image, seed) -> uint8 image`` op after pad-crop-flip in training (the modern recipe's,
    :mod:`keras_convnets.training.augment`), seeded by :func:`extra_seed` of the image's seed, so the crops and
    flips stay those of a run without it. ``settings``: the run's
    :class:`~keras_convnets.training.performance.RuntimeSettings` (None: this machine's).
    """
    spec = dataset_spec(name)
    checks.positive_int("batch_size", batch_size)
    checks.one_of("augmentation (None: the dataset's usual setting)", augmentation, (None, True, False))
    return datasets.cifar_pipeline(
        load_split(name, split, data_dir, download, settings=settings), batch_size, training=training,
        augment=spec.augment if augmentation is None else augmentation, seed=seed, cache=cache,
        drop_remainder=drop_remainder, per_image=per_image, settings=settings)


def compute_statistics(name: str, split: str = "train", data_dir: Optional[str] = None, *, settings=None):
    """Per-channel ``(mean, std)`` (pixels in [0, 1]) of every image of a tfds dataset's split, in float64:
    :func:`keras_convnets.training.datasets.compute_statistics` over the whole split (the figures of a
    :class:`DatasetSpec`)."""
    description = datasets.describe(name, data_dir=data_dir, statistics=datasets.PLACEHOLDER_STATISTICS,
                                    settings=settings)
    whole = datasets.Split(split, dataset_info(name, data_dir).splits[split].num_examples)
    statistics = datasets.compute_statistics(description, max_images=None, split=whole, settings=settings)
    return statistics.mean, statistics.std


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
