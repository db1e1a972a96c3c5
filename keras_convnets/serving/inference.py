"""Inference with our SavedModels: accuracy on a dataset as training evaluated it (:func:`evaluate_saved_model`,
refused when the model's classes are not the dataset's) and test-time augmentation (:func:`tta_probabilities`)."""

import dataclasses

import numpy as np

from keras_convnets import checks
from keras_convnets.data import catalog, pipelines
from keras_convnets.serving.saved_model import (
    PREPROCESSED,
    SIGNATURE_INPUT,
    SIGNATURE_OUTPUT,
    SavedModelError,
    crop_fraction,
    input_size,
    interpolation,
    load,
    load_class_names,
    resizes_images,
)

#: Test-time augmentations ``evaluate_saved_model(tta=...)`` takes.
TTA = ("flip",)


def tta_probabilities(fn, images, tta=None):
    """``fn(images)`` (probabilities [B, C] of uint8 images [B, H, W, 3]), or with ``tta="flip"`` the mean of it and
    ``fn`` of the horizontally mirrored images (the flip the CIFAR and ImageNet pipelines train with)."""
    probabilities = np.asarray(fn(images))
    if tta == "flip":
        probabilities = (probabilities + np.asarray(fn(np.ascontiguousarray(np.asarray(images)[:, :, ::-1])))) / 2
    return probabilities


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate_saved_model` measured: ``accuracy`` on ``count`` images of ``split`` (the split or folder
    part scored, e.g. ``"test"``, ``"train (held out part)"``). Unpacks as ``(accuracy, count)``."""

    accuracy: float
    count: int
    split: str

    def __iter__(self):
        return iter((self.accuracy, self.count))


def evaluate_saved_model(path, dataset, split=None, *, data_dir=None, batch_size=256, tta=None) -> Evaluation:
    """Accuracy of the SavedModel at ``path`` on a dataset of raw images, read by the evaluation pipeline at the
    model's input size, crop fraction and interpolation and scored through the ``preprocessed`` signature (no second
    crop).

    Args:
        path: a SavedModel directory of this package.
        dataset: a tfds name or a folder of class folders (:func:`keras_convnets.data.catalog.describe`).
        split: a tfds split; default, the one training evaluated on (test, else validation, else the held-out part
            of train).
        data_dir: the tensorflow_datasets directory.
        batch_size: images per call.
        tta: None, or ``"flip"`` (:func:`tta_probabilities`).

    Returns:
        An :class:`Evaluation` (``accuracy, count = evaluate_saved_model(...)`` still works).

    Raises:
        SavedModelError: the model's classes are not the dataset's (their number, or their names where both sides
            have names), or, for an export older than the any-size signature, its input size is not the dataset's:
            its score would mean nothing.
    """
    import tensorflow as tf

    checks.one_of("tta (--tta)", tta, (None, *TTA))
    saved_model = load(path)
    size = input_size(saved_model)[0]
    fraction, method = crop_fraction(saved_model), interpolation(saved_model)
    # The statistics are the model's own business (its first layer); the pipeline needs none.
    description = catalog.describe(dataset, image_size=size if resizes_images(saved_model) else None,
                                    augmentation="imagenet" if fraction < 1 else "none",
                                    statistics=catalog.PLACEHOLDER_STATISTICS, data_dir=data_dir)
    if split is not None and split != description.evaluation.source:
        if description.kind != "tfds":
            raise ValueError(f"split applies to tfds datasets; {dataset} is a folder (its evaluation images: "
                             f"{description.evaluation.source})")
        count = _tfds_split_count(description, split)
        description = dataclasses.replace(description, evaluation=catalog.Split(split, count))
    _check_fits(path, load_class_names(saved_model), size, dataset, description)
    fn = saved_model.signatures[PREPROCESSED if resizes_images(saved_model) else "serving_default"]
    correct = count = 0
    view = pipelines.eval_dataset(description, batch_size, crop_fraction=fraction if fraction < 1 else None,
                                 interpolation=method)
    for images, labels in view.as_numpy_iterator():
        predicted = tta_probabilities(lambda batch: fn(**{SIGNATURE_INPUT: tf.constant(batch)})[SIGNATURE_OUTPUT]
                                      .numpy(), images, tta).argmax(-1)
        correct += int((predicted == labels).sum())
        count += len(labels)
    return Evaluation(correct / max(count, 1), count, description.evaluation.label(description.name))


def _named(names) -> bool:
    """Whether class names are names, not the indices ``"0"`` ... ``"N-1"`` an export without names carries."""
    return list(names) != [str(i) for i in range(len(names))]


def _check_fits(path, model_names, size, dataset, description) -> None:
    """A :class:`SavedModelError` unless the model at ``path`` (``model_names``, input ``size``) was trained on
    ``dataset``'s classes: their number always, their names wherever both sides have names (ImageNet's WordNet IDs
    and names compared as the same classes)."""
    from keras_convnets.models import imagenet

    if len(model_names) != description.num_classes:
        raise SavedModelError(f"{path} predicts {len(model_names)} classes but {dataset} has "
                              f"{description.num_classes}: it was not trained on {dataset} (pass the --dataset it was "
                              "trained on)")
    ours, theirs = imagenet.readable(model_names), imagenet.readable(description.class_names)
    if _named(model_names) and _named(description.class_names) and ours != theirs:
        differ = [f"{a!r} vs {b!r}" for a, b in zip(ours, theirs) if a != b]
        what = "the same classes in another order" if sorted(ours) == sorted(theirs) else "other classes"
        raise SavedModelError(f"{path} was trained on {what} than {dataset}'s (class {differ[0]}, {len(differ)} of "
                              f"{len(ours)} differ): its score would mean nothing (pass the --dataset it was "
                              "trained on)")
    if description.image_size != size:
        raise SavedModelError(f"{path} takes {size}x{size} images but {dataset}'s are "
                              f"{description.image_size}x{description.image_size}")


def _tfds_split_count(description, split):
    import tensorflow_datasets as tfds

    splits = tfds.builder(description.name, data_dir=description.data_dir).info.splits
    if split not in splits:
        raise ValueError(f"split {split!r} is not a split of {description.name}; it has {', '.join(splits)}")
    return splits[split].num_examples
