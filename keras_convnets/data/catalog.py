"""The catalog of the data layer: datasets by name or path (any tfds image-classification dataset, or a folder of
class sub-folders), described once (:class:`DatasetDescription`: image size, classes, per-channel statistics,
augmentation, splits), and their raw examples (:func:`encoded_examples`, :func:`load_split`) for the pipelines
(:mod:`keras_convnets.data.pipelines`).

``describe("oxford_flowers102")``, ``describe("imagenette/320px", image_size=160)``, ``describe("path/to/photos")``.

- **tfds.** One builder helper (:func:`tfds_builder`): the name checked (an unknown one gets the closest tfds names),
  a prepared copy in the data directory (``data_dir``, else ``$TFDS_DATA_DIR``: :func:`resolve_data_dir`), else,
  when asked, downloaded; for the datasets of :data:`DATASETS` only after their host answers (offline, tfds' own
  download retries for minutes first). Every failure is one line saying how to point at a local copy.
- **Splits.** tfds: training on ``train``; evaluation on ``test``, else ``validation``, else a seeded held-out
  fraction of ``train``. Folders: see :mod:`keras_convnets.data.folders`. :attr:`DatasetDescription.split_note`
  says which, in one line, for the run's first lines.
- **Statistics** (per channel, pixels in [0, 1]): recorded ones passed back in (a resumed run reads them from its
  ``run.json``), else the input normalization of the pretrained weights the model starts from (keras.applications'
  ``preprocess_input`` modes: the features were learned on that input, whatever the new dataset; for a weights file,
  decided by its provenance: :func:`pretrained_statistics`), else the table :data:`DATASETS` (cifar10, cifar100,
  svhn_cropped), else computed once on a bounded, deterministic sample of the training images
  (:func:`compute_statistics`, which also computes the table's figures over a whole split).
- **Augmentation**: ``"cifar"`` (pad 4, random 32x32 crop, flip: :func:`keras_convnets.data.transforms.augment`)
  at 32x32 and below, ``"imagenet"`` (random-resized crop + flip, :mod:`keras_convnets.data.transforms`) above,
  ``"none"`` for SVHN as the papers train it.

TensorFlow is imported only when examples are read, so the command line can check a dataset name without it.
"""

import dataclasses
import difflib
import logging
import os
import socket
from typing import Optional, Tuple

import numpy as np

from keras_convnets import checks
from keras_convnets.data import folders, transforms
from keras_convnets.models import pretrained as pretrained_weights
from keras_convnets.models.checkpoints import checkpoint_format
from keras_convnets.runtime import settings as runtime_settings

logger = logging.getLogger(__name__)

AUGMENTATIONS = ("cifar", "imagenet", "none")
#: Default training size of a dataset whose images have no fixed size: the ImageNet models' input.
DEFAULT_IMAGE_SIZE = 224
#: Held-out fraction of train when a dataset has no test or validation split (or a folder no test folder).
DEFAULT_HOLDOUT_FRACTION = 0.1
#: Images :func:`compute_statistics` reads at most (unless told otherwise).
STATISTICS_IMAGES = 2000
#: Encoded examples a tfds training pipeline shuffles over (at ~110 kB per ImageNet JPEG, ~1 GB).
SHUFFLE_BUFFER = 10_000
#: The environment variable tfds reads its data directory from.
DATA_DIR_ENV = "TFDS_DATA_DIR"


# ------------------------------------------------------------------------------------- the CIFAR papers' datasets --

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


class UnknownDatasetError(DatasetUnavailableError):
    """Neither a tfds dataset nor a folder of class folders."""


def dataset_spec(name: str) -> DatasetSpec:
    """The table's entry for a CIFAR-family dataset.

    Args:
        name: ``"cifar10"``, ``"cifar100"`` or ``"svhn_cropped"`` (:data:`DATASETS`).

    Returns:
        Its :class:`DatasetSpec`; a :class:`DatasetUnavailableError` listing the supported names for another.
    """
    if name not in DATASETS:
        raise DatasetUnavailableError(f"unknown dataset {name!r}; supported datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def resolve_data_dir(data_dir: Optional[str] = None) -> Optional[str]:
    """``data_dir``, else ``$TFDS_DATA_DIR``, else None (tfds' own default, ``~/tensorflow_datasets``)."""
    return data_dir or os.environ.get(DATA_DIR_ENV) or None


@dataclasses.dataclass(frozen=True)
class Statistics:
    """Per-channel mean and std of pixels in [0, 1], RGB order, and where they come from. ``reverse_channels``:
    the pretrained weights expect BGR input (keras.applications' "caffe" mode: ResNet-50/101/152 v1), so the
    normalized image's channels must be reversed before the first convolution."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str
    reverse_channels: bool = False

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "Statistics":
        return cls(tuple(obj["mean"]), tuple(obj["std"]), obj["source"], bool(obj.get("reverse_channels", False)))


#: Statistics that stand for none: a description's before they are chosen, or where they are not used.
PLACEHOLDER_STATISTICS = Statistics((0.0,) * 3, (1.0,) * 3, "not computed")


def _statistics(preprocessing: pretrained_weights.Preprocessing) -> Statistics:
    """The normalisation a :class:`~keras_convnets.models.pretrained.Preprocessing` record says, as statistics."""
    return Statistics(preprocessing.mean, preprocessing.std, preprocessing.description,
                      reverse_channels=preprocessing.channel_order == "bgr")


def imagenet_statistics(model_name: str) -> Statistics:
    """The input normalization ImageNet weights of ``model_name`` were trained with: keras.applications' mode for
    the models whose weights it publishes (ResNet v1: caffe; ResNet v2: tf; DenseNet: torch), torchvision's (the
    same mean/std as torch mode) for the others."""
    return _statistics(pretrained_weights.imagenet_preprocessing(model_name))


#: What ``weights_channels`` (``--weights-channels``) accepts: the channel order a weights file was trained on.
CHANNEL_ORDERS = ("rgb", "bgr")


def pretrained_statistics(model_name: str, weights, channels: str | None = None) -> Statistics:
    """The input normalization for fine-tuning ``model_name`` from ``weights`` (``"imagenet"``, a torchvision /
    timm source, or a file). ``channels`` (``"rgb"`` / ``"bgr"``) says what the weights were trained on; None
    decides by provenance: ``"imagenet"`` and keras.applications' own files (known by file name or MD5,
    :func:`keras_convnets.models.pretrained.keras_applications_file`) take keras.applications' mode for their model
    (caffe, BGR, for ResNet-50/101/152); torchvision / timm weights take torch mode; any other file is of unknown
    provenance and taken as RGB with the model's non-caffe statistics (torch mode for ResNet-50/101/152), never
    silently reversed. ``"bgr"``: caffe mode (BGR, channels reversed); ``"rgb"``: that RGB default."""
    checks.one_of("weights_channels", channels, (None, *CHANNEL_ORDERS))
    own = imagenet_statistics(model_name)
    rgb = _statistics(pretrained_weights.TORCH_MODE) if own.reverse_channels else own
    if channels == "bgr":
        caffe = _statistics(pretrained_weights.CAFFE_MODE)
        return dataclasses.replace(caffe, source=f"{caffe.source}, as weights_channels='bgr' says")
    if channels == "rgb":
        return dataclasses.replace(rgb, source=f"{rgb.source}, as weights_channels='rgb' says")
    if weights == "imagenet":
        return own
    if pretrained_weights.is_named_source(weights) and model_name in pretrained_weights.TORCH:
        return _statistics(pretrained_weights.published_checkpoint(model_name, weights).preprocessing)
    if pretrained_weights.is_named_source(weights) or checkpoint_format(weights):
        return _statistics(pretrained_weights.TORCH_MODE)   # torchvision's and timm's, whatever the file
    key = pretrained_weights.keras_applications_file(weights)
    if key is not None:
        stats = imagenet_statistics(key)
        return dataclasses.replace(stats, source=f"{stats.source}: keras.applications' {key} file")
    if own.reverse_channels:
        return dataclasses.replace(rgb, source=f"{rgb.source}: RGB, the weights file is not keras.applications' "
                                               "(caffe-style BGR? say weights_channels='bgr')")
    return own


@dataclasses.dataclass(frozen=True)
class Split:
    """One side of a run's data. ``source``: the tfds split or folder the images come from; ``holdout``: None,
    ``"kept"`` or ``"held out"`` (which part of a seeded held-out split of ``source``); folder splits list their
    ``files`` and ``labels``."""

    source: str
    count: int
    holdout: str | None = None
    files: tuple[str, ...] = ()
    labels: tuple[int, ...] = ()

    def to_json(self) -> dict:
        return {"source": self.source, "count": self.count, "holdout": self.holdout}

    def label(self, root: str | None = None) -> str:
        """What the split is, for a person: ``"test"``, ``"train (held out part)"``; a folder's relative to the
        dataset's folder ``root`` (``"test"``, or ``"held out part"`` of the folder itself)."""
        source = os.path.relpath(self.source, root) if root and os.path.isabs(self.source) else self.source
        if not self.holdout:
            return source
        return f"{self.holdout} part" if source == "." else f"{source} ({self.holdout} part)"


@dataclasses.dataclass(frozen=True)
class DatasetDescription:
    """Everything a run needs to know about its data (the generalization of :class:`DatasetSpec`)."""

    name: str                     # the tfds name, or the folder's absolute path
    kind: str                     # "tfds" or "folder"
    image_size: int               # the model's input: size x size
    class_names: tuple[str, ...]
    augmentation: str             # one of AUGMENTATIONS
    train: Split
    evaluation: Split
    split_note: str               # one line: which splits, how chosen
    statistics: Statistics
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
    split_seed: int = 0
    data_dir: str | None = None   # tfds data directory
    image_key: str = "image"
    label_key: str = "label"
    skipped_report: str = ""      # folders: the unreadable files, one line ("" when none)
    image_format: str | None = None  # "JPEG", "PNG", ... when every image has that format; None: mixed or unknown

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.statistics.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.statistics.std

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.image_size, self.image_size, 3

    @property
    def augment(self) -> bool:
        return self.augmentation != "none"

    @property
    def crop_fraction(self) -> float:
        """The evaluation crop's share of the resized short side (0.875 for ImageNet-style, 1 for CIFAR-style)."""
        return transforms.EVAL_CROP_FRACTION if self.augmentation == "imagenet" else 1.0

    def summary(self) -> dict:
        """What ``run.json`` records about the data (the statistics so a resumed run reuses them)."""
        return {"dataset": self.name, "kind": self.kind, "image_size": self.image_size,
                "classes": self.num_classes, "augmentation": self.augmentation, "crop_fraction": self.crop_fraction,
                "train": self.train.to_json(),
                "evaluation": self.evaluation.to_json(), "holdout_fraction": self.holdout_fraction,
                "split_seed": self.split_seed, "statistics": self.statistics.to_json()}


# ----------------------------------------------------------------------------------------------------------- tfds --

def tfds_names() -> list[str]:
    """The tfds builders this installation knows (offline: the community index is not fetched)."""
    import tensorflow_datasets as tfds

    return list(tfds.list_builders(with_community_datasets=False))


def _unknown_name_error(name: str) -> UnknownDatasetError:
    names = tfds_names()
    base = name.split("/")[0].split(":")[0].lower()
    close = difflib.get_close_matches(base, names, n=4, cutoff=0.6)
    close = (close + [n for n in names if base and base in n and n not in close])[:5]
    hint = f"; closest tfds names: {', '.join(close)}" if close else ""
    return UnknownDatasetError(f"dataset {name!r} is neither a tfds dataset nor a folder of class sub-folders{hint}")


def _looks_like_path(name: str) -> bool:
    """Whether ``name`` (not an existing folder) was meant as a path rather than a tfds name."""
    if name.startswith((".", "/", "~")) or "\\" in name:
        return True
    return "/" in name and name.split("/")[0] not in _cached_tfds_names()


_NAMES_CACHE: list[str] = []


def _cached_tfds_names() -> list[str]:
    if not _NAMES_CACHE:
        _NAMES_CACHE.extend(tfds_names())
    return _NAMES_CACHE


def _reachable(host: str, timeout: float = 5.0) -> bool:
    """Whether an HTTPS connection to ``host`` opens: offline, tfds' own download retries for minutes first."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def tfds_builder(name: str, data_dir: str | None = None, download: bool = False):
    """The prepared tfds builder of ``name`` in ``data_dir`` (:func:`resolve_data_dir`), or a one-line error: an
    unknown name (:class:`UnknownDatasetError`, with the closest tfds names), or no prepared copy
    (:class:`DatasetUnavailableError`, saying how to point at one). ``download=True``: tfds downloads and prepares a
    missing one, as ``tfds.load`` does (:func:`_download`)."""
    import tensorflow_datasets as tfds

    if name.split("/")[0].split(":")[0] not in _cached_tfds_names():
        raise _unknown_name_error(name)
    data_dir = resolve_data_dir(data_dir)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (ValueError, KeyError, tfds.core.registered.DatasetNotFoundError) as error:
        raise UnknownDatasetError(f"tfds cannot build {name!r}: {str(error).splitlines()[0]}") from None
    if not builder.is_prepared():
        _download(builder, name, data_dir, download)
    return builder


def _download(builder, name: str, data_dir: str | None, download: bool) -> None:
    """Downloads and prepares ``builder`` when ``download``, else a one-line error. For a dataset of
    :data:`DATASETS` its host is probed first (an unreachable one is the same error, at once) and, since the source
    answered, a failure of tfds is raised as it is; for any other, tfds' many kinds of failure (no network, a manual
    download) become one line."""
    host = DATASETS[name].source_host if name in DATASETS else None
    if not download or (host and not _reachable(host)):
        where = data_dir or "tfds' default directory (~/tensorflow_datasets)"
        why = f" and {host} cannot be reached to download it" if download else ""
        how = "" if download else ", or let it download (download=True) on a machine with internet"
        raise DatasetUnavailableError(
            f"dataset {name!r} is not prepared in {where}{why}; point --data-dir (or {DATA_DIR_ENV}, or data_dir=) "
            f"at a tensorflow_datasets directory holding {name}/{how}")
    logger.info("tfds: downloading and preparing %s into %s", name, builder.data_dir)
    try:
        builder.download_and_prepare()
    except Exception as error:  # noqa: BLE001 -- tfds raises many kinds (no network, manual download, ...)
        if host:
            raise  # the source answered: tfds' own error says what went wrong
        raise DatasetUnavailableError(f"tfds could not download and prepare {name!r}: "
                                      f"{' '.join(str(error).split())[:300]}") from None


def dataset_info(name: str, data_dir: str | None = None, download: bool = False):
    """tfds' ``DatasetInfo`` of a prepared dataset (class names, split sizes, image shape): :func:`tfds_builder`'s."""
    return tfds_builder(name, data_dir, download).info


def class_names(info) -> list:
    """The class names of a tfds ``DatasetInfo`` whose label feature is ``"label"``."""
    return list(info.features["label"].names)


def load_split(name: str, split: str, data_dir: str | None = None, download: bool = False, *, settings=None):
    """The raw ``(uint8 image, int64 label)`` examples of one tfds split, in file order, with our dataset options."""
    builder = tfds_builder(name, data_dir, download)
    ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    return ds.with_options(runtime_settings.dataset_options(settings))


def _image_and_label_keys(name: str, info) -> tuple[str, str]:
    """The image and class-label feature names of an image-classification dataset, or a one-line error."""
    import tensorflow_datasets as tfds

    features = info.features
    keys = info.supervised_keys
    if not (isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
        keys = ("image", "label")
    image_key, label_key = keys
    names = set(features.keys())
    if not (image_key in names and isinstance(features[image_key], tfds.features.Image)
            and label_key in names and isinstance(features[label_key], tfds.features.ClassLabel)):
        raise UnknownDatasetError(f"tfds dataset {name!r} is not an image-classification dataset (needs an image "
                                  "feature and a class label, as its supervised keys)")
    return image_key, label_key


def _tfds_splits(name: str, info, holdout_fraction: float, split_seed: int) -> tuple[Split, Split, str]:
    splits = {split: info.splits[split].num_examples for split in info.splits}
    if "train" not in splits:
        raise UnknownDatasetError(f"tfds dataset {name!r} has no 'train' split (it has: {', '.join(splits)})")
    for evaluation in ("test", "validation"):
        if evaluation in splits:
            why = "" if evaluation == "test" else " (it has no test split)"
            note = (f"{name}: training on train ({splits['train']:,} images), evaluating on {evaluation} "
                    f"({splits[evaluation]:,}){why}")
            return Split("train", splits["train"]), Split(evaluation, splits[evaluation]), note
    held = len(_tfds_holdout(splits["train"], holdout_fraction, split_seed))
    note = (f"{name} has no test or validation split: evaluating on a held-out {holdout_fraction:.0%} of train "
            f"({held:,} images, split seed {split_seed}), training on the other {splits['train'] - held:,}")
    return (Split("train", splits["train"] - held, "kept"), Split("train", held, "held out"), note)


def _tfds_holdout(count: int, fraction: float, seed: int) -> np.ndarray:
    """Indices (in file order) of a seeded held-out ``fraction`` of a split of ``count`` examples."""
    checks.number_in("holdout_fraction", fraction, 0.0, 1.0, low_open=True, high_open=True)
    return np.sort(np.random.default_rng(seed).permutation(count)[:max(1, round(fraction * count))])


# -------------------------------------------------------------------------------------------------------- folders --

def _folder_splits(path: str, holdout_fraction: float, split_seed: int, threads: int | None):
    layout = folders.split_layout(path)
    if layout:
        train_scan = folders.scan_classes(layout[0], threads=threads)
        eval_scan = folders.scan_classes(layout[1], threads=threads, class_names=train_scan.class_names)
        train = Split(layout[0], len(train_scan.files), None, train_scan.files, train_scan.labels)
        evaluation = Split(layout[1], len(eval_scan.files), None, eval_scan.files, eval_scan.labels)
        note = (f"{path}: training on {os.path.basename(layout[0])}/ ({train.count:,} images), evaluating on "
                f"{os.path.basename(layout[1])}/ ({evaluation.count:,})")
        report = "; ".join(r for r in (train_scan.report, eval_scan.report) if r)
        return train_scan.class_names, train, evaluation, note, report, train_scan.formats | eval_scan.formats
    scan = folders.scan_classes(path, threads=threads)
    held = folders.holdout_indices(scan.labels, holdout_fraction, split_seed)
    is_held = np.zeros(len(scan.files), bool)
    is_held[held] = True

    def part(mask, which):
        files = tuple(f for f, m in zip(scan.files, mask) if m)
        return Split(path, len(files), which, files, tuple(int(v) for v, m in zip(scan.labels, mask) if m))

    train, evaluation = part(~is_held, "kept"), part(is_held, "held out")
    note = (f"{path} has no train/ and test/ folders: evaluating on a held-out {holdout_fraction:.0%} of each class "
            f"({evaluation.count:,} images, split seed {split_seed}), training on the other {train.count:,}")
    return scan.class_names, train, evaluation, note, scan.report, scan.formats


# ------------------------------------------------------------------------------------------------------- describe --

def describe(dataset: str, *, image_size: int | None = None, augmentation: str | None = None,
             pretrained: str | None = None, statistics: Statistics | dict | None = None,
             data_dir: str | None = None, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION, split_seed: int = 0,
             download: bool = False, threads: int | None = None, settings=None) -> DatasetDescription:
    """Describes ``dataset``, a tfds name (``"oxford_flowers102"``, ``"imagenette/320px"``) or a folder of class
    sub-folders, for training at ``image_size`` (default: the dataset's fixed size, else 224).

    ``pretrained``: the registered model name whose ImageNet weights the run starts from (their input
    normalization is used); ``statistics``: recorded statistics (a :class:`Statistics` or its ``to_json()``), used
    as they are. Raises a ValueError subclass with a one-line reason: unknown name (with the closest tfds names), not
    a folder of class folders, fewer than 2 classes, an empty class, not prepared, not image classification.
    """
    if augmentation is not None:
        checks.one_of("augmentation", augmentation, AUGMENTATIONS)
    if image_size is not None:
        checks.integer_in("image_size", image_size, 8, 4096)
    checks.number_in("holdout_fraction", holdout_fraction, 0.0, 1.0, low_open=True, high_open=True)
    image_key, label_key, report = "image", "label", ""
    known = DATASETS.get(dataset)
    if os.path.isdir(dataset):
        kind, name = "folder", os.path.abspath(dataset)
        classes, train, evaluation, note, report, formats = _folder_splits(name, holdout_fraction, split_seed, threads)
        native_size, image_format = None, next(iter(formats)) if len(formats) == 1 else None
    elif _looks_like_path(dataset):
        raise UnknownDatasetError(f"dataset {dataset!r} is not a folder (expected a tfds name or a folder of class "
                                  "sub-folders, PATH/CLASS/IMAGE.jpg)")
    else:
        kind, name = "tfds", dataset
        data_dir = resolve_data_dir(data_dir)
        info = dataset_info(dataset, data_dir, download)
        image_key, label_key = _image_and_label_keys(dataset, info)
        classes = tuple(info.features[label_key].names)
        train, evaluation, note = _tfds_splits(dataset, info, holdout_fraction, split_seed)
        shape = info.features[image_key].shape
        native_size = shape[0] if shape[0] is not None and shape[0] == shape[1] else None
        encoding = info.features[image_key].encoding_format  # None: stored as given (any format)
        image_format = encoding.upper() if encoding else None
    size = image_size or native_size or DEFAULT_IMAGE_SIZE
    if augmentation is None:
        augmentation = ("cifar" if known.augment else "none") if known and size == native_size else \
            "cifar" if size <= 32 else "imagenet"
    description = DatasetDescription(name, kind, size, classes, augmentation, train, evaluation, note,
                                      PLACEHOLDER_STATISTICS, holdout_fraction, split_seed, data_dir, image_key,
                                      label_key, report, image_format)
    if isinstance(statistics, dict):
        statistics = Statistics.from_json(statistics)
    if statistics is None and pretrained:
        statistics = imagenet_statistics(pretrained)
    if statistics is None and known:
        statistics = Statistics(known.mean, known.std, f"{known.name} train split (table)")
    if statistics is None:
        statistics = compute_statistics(description, threads=threads, settings=settings)
    return dataclasses.replace(description, statistics=statistics)


# ----------------------------------------------------------------------------------------------- raw examples --

def encoded_examples(description: DatasetDescription, split: Split, *, shuffle_seed=None):
    """``(encoded image bytes, int64 label)`` of ``split`` in file order, or shuffled by ``shuffle_seed`` (an int64
    tensor inside an epoch's function: the files' order and the shuffle buffer's draw from it alone)."""
    import tensorflow as tf

    if description.kind == "folder":
        ds = tf.data.Dataset.from_tensor_slices((list(split.files), np.asarray(split.labels, np.int64)))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(split.files), seed=shuffle_seed, reshuffle_each_iteration=False)
        return ds.map(lambda path, label: (tf.io.read_file(path), label), num_parallel_calls=tf.data.AUTOTUNE)
    import tensorflow_datasets as tfds

    builder = tfds_builder(description.name, description.data_dir)
    shuffle_files = shuffle_seed is not None and split.holdout is None  # held-out membership needs file order
    read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed, shuffle_reshuffle_each_iteration=False) \
        if shuffle_files else None
    ds = builder.as_dataset(split=split.source, shuffle_files=shuffle_files, read_config=read_config,
                            decoders={description.image_key: tfds.decode.SkipDecoding()})
    ds = ds.map(lambda example: (example[description.image_key], tf.cast(example[description.label_key], tf.int64)))
    if split.holdout is not None:
        total = description.train.count + description.evaluation.count
        held = np.zeros(total, bool)
        held[_tfds_holdout(total, description.holdout_fraction, description.split_seed)] = True
        mask = tf.constant(held if split.holdout == "held out" else ~held)
        ds = ds.enumerate().filter(lambda index, _: tf.gather(mask, index))
        ds = ds.map(lambda _, example: example)
    if shuffle_seed is not None:
        ds = ds.shuffle(min(split.count, SHUFFLE_BUFFER), seed=shuffle_seed, reshuffle_each_iteration=False)
    return ds


def compute_statistics(dataset, split: Split | str | None = None, *, max_images: int | None = STATISTICS_IMAGES,
                       data_dir: str | None = None, threads: int | None = None, settings=None) -> Statistics:
    """Per-channel mean and std (pixels in [0, 1]) of a dataset's images as decoded (any size), each image weighing
    the same; deterministic, float64, summed image by image in file order.

    Args:
        dataset: a :class:`DatasetDescription`, or a tfds name (then every image of ``split``, default ``"train"``:
            the figures of a :class:`DatasetSpec`).
        split: a :class:`Split` or a tfds split name (default: the training images).
        max_images: at most that many images (None: every one): the first ones in file order for tfds (tfds
            shuffles examples when it prepares a dataset), evenly spaced over the (class-sorted) file list for a
            folder.
        data_dir: the tensorflow_datasets directory of a name.
        threads: the pipeline's threads; settings: the runtime settings (None: this machine's).

    Returns:
        A :class:`Statistics`.
    """
    import tensorflow as tf

    description = dataset
    if not isinstance(dataset, DatasetDescription):
        description = describe(dataset, data_dir=data_dir, statistics=PLACEHOLDER_STATISTICS, settings=settings)
        split, max_images = split or "train", None
    images = split or description.train
    if isinstance(images, str):
        images = Split(images, dataset_info(description.name, description.data_dir).splits[images].num_examples)
    if description.kind == "folder" and max_images is not None and images.count > max_images:
        picked = np.linspace(0, images.count - 1, max_images).round().astype(int)
        images = dataclasses.replace(images, files=tuple(images.files[i] for i in picked),
                                     labels=tuple(images.labels[i] for i in picked), count=max_images)

    def moments(encoded, label):
        pixels = tf.reshape(tf.cast(transforms.decode_rgb(encoded), tf.float64) / 255.0, [-1, 3])
        return tf.reduce_mean(pixels, 0), tf.reduce_mean(tf.square(pixels), 0)

    threads = threads or runtime_settings.input_threads(True, settings)
    ds = encoded_examples(description, images).take(-1 if max_images is None else max_images).map(
        moments, num_parallel_calls=threads)
    first, second, count = np.zeros(3), np.zeros(3), 0
    options = runtime_settings.dataset_options(settings, threads=threads)
    for means, squares in ds.batch(1024).with_options(options).as_numpy_iterator():
        for mean, square in zip(means, squares):  # one image at a time, in order: the sums never depend on batching
            first, second, count = first + mean, second + square, count + 1
    if count == 0:
        raise ValueError(f"{description.name}: no training images to compute statistics from")
    mean = first / count
    std = np.sqrt(np.maximum(second / count - mean ** 2, 1e-12))
    return Statistics(tuple(float(v) for v in mean), tuple(float(v) for v in std),
                      f"computed from {count:,} training images")
