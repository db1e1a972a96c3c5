"""Datasets by name or path: any tfds image-classification dataset, or a folder of class sub-folders, described once
(:class:`DatasetDescription`: image size, classes, per-channel statistics, augmentation, splits) and read by seeded
per-image tf.data pipelines that yield ``(uint8 [B, S, S, 3], int64 [B])``.

``describe("oxford_flowers102")``, ``describe("imagenette/320px", image_size=160)``, ``describe("path/to/photos")``.

- **Splits.** tfds: training on ``train``; evaluation on ``test``, else ``validation``, else a seeded held-out
  fraction of ``train``. Folders: see :mod:`keras_convnets.training.image_folder`. :attr:`DatasetDescription.split_note`
  says which, in one line, for the run's first lines.
- **Statistics** (per channel, pixels in [0, 1]): recorded ones passed back in (a resumed run reads them from its
  ``run.json``), else the input normalization of the pretrained weights the model starts from (keras.applications'
  ``preprocess_input`` modes: the features were learned on that input, whatever the new dataset; for a weights file,
  decided by its provenance: :func:`pretrained_statistics`), else the table of
  :mod:`keras_convnets.training.data` (cifar10, cifar100, svhn_cropped), else computed once on a bounded, deterministic
  sample of the training images (:func:`compute_statistics`).
- **Augmentation**: ``"cifar"`` (pad 4, random 32x32 crop, flip: :func:`keras_convnets.training.transforms.augment`)
  at 32x32 and below, ``"imagenet"`` (random-resized crop + flip, :mod:`keras_convnets.training.transforms`) above,
  ``"none"`` for SVHN as the papers train it. Evaluation: the short side resized and centre-cropped
  (:func:`keras_convnets.training.transforms.eval_transform`, crop fraction 0.875 for ``"imagenet"``, 1 otherwise).

Images are decoded in the pipeline, after shuffling (tfds images are read encoded), so a large dataset's shuffle
buffer holds compressed bytes. The CIFAR-family tfds datasets at 32x32 keep today's pipeline
(:func:`keras_convnets.training.data.load_dataset`) unchanged.
"""

import dataclasses
import difflib
import os

import numpy as np

from keras_convnets import checks
from keras_convnets.models import pretrained as pretrained_weights
from keras_convnets.models.checkpoints import checkpoint_format
from keras_convnets.training import data, image_folder

AUGMENTATIONS = ("cifar", "imagenet", "none")
#: Default training size of a dataset whose images have no fixed size: the ImageNet models' input.
DEFAULT_IMAGE_SIZE = 224
#: Held-out fraction of train when a dataset has no test or validation split (or a folder no test folder).
DEFAULT_HOLDOUT_FRACTION = 0.1
#: Images :func:`compute_statistics` reads at most.
STATISTICS_IMAGES = 2000
#: Encoded examples a tfds training pipeline shuffles over (at ~110 kB per ImageNet JPEG, ~1 GB).
SHUFFLE_BUFFER = 10_000


class UnknownDatasetError(data.DatasetUnavailableError):
    """Neither a tfds dataset nor a folder of class folders."""


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


@dataclasses.dataclass(frozen=True)
class DatasetDescription:
    """Everything a run needs to know about its data (the generalization of :class:`data.DatasetSpec`)."""

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
        from keras_convnets.training import transforms

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


def _tfds_builder(name: str, data_dir: str | None, download: bool):
    """The prepared tfds builder of ``name`` (downloading it when ``download``), or a one-line error."""
    import tensorflow_datasets as tfds

    base = name.split("/")[0].split(":")[0]
    if base not in _cached_tfds_names():
        raise _unknown_name_error(name)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (ValueError, KeyError, tfds.core.registered.DatasetNotFoundError) as error:
        raise UnknownDatasetError(f"tfds cannot build {name!r}: {str(error).splitlines()[0]}") from None
    if not builder.is_prepared():
        if not download:
            raise data.DatasetUnavailableError(
                f"dataset {name!r} is not prepared in {data_dir or 'tfds default directory'}; point --data-dir (or "
                f"{data.DATA_DIR_ENV}) at a tensorflow_datasets directory holding it, or let tfds download it")
        try:
            builder.download_and_prepare()
        except Exception as error:  # noqa: BLE001 -- tfds raises many kinds (no network, manual download, ...)
            raise data.DatasetUnavailableError(f"tfds could not download and prepare {name!r}: "
                                               f"{' '.join(str(error).split())[:300]}") from None
    return builder


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
    layout = image_folder.split_layout(path)
    if layout:
        train_scan = image_folder.scan_classes(layout[0], threads=threads)
        eval_scan = image_folder.scan_classes(layout[1], threads=threads, class_names=train_scan.class_names)
        train = Split(layout[0], len(train_scan.files), None, train_scan.files, train_scan.labels)
        evaluation = Split(layout[1], len(eval_scan.files), None, eval_scan.files, eval_scan.labels)
        note = (f"{path}: training on {os.path.basename(layout[0])}/ ({train.count:,} images), evaluating on "
                f"{os.path.basename(layout[1])}/ ({evaluation.count:,})")
        report = "; ".join(r for r in (train_scan.report, eval_scan.report) if r)
        return train_scan.class_names, train, evaluation, note, report, train_scan.formats | eval_scan.formats
    scan = image_folder.scan_classes(path, threads=threads)
    held = image_folder.holdout_indices(scan.labels, holdout_fraction, split_seed)
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
             download: bool = False, threads: int | None = None) -> DatasetDescription:
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
    known = data.DATASETS.get(dataset)
    if os.path.isdir(dataset):
        kind, name = "folder", os.path.abspath(dataset)
        class_names, train, evaluation, note, report, formats = _folder_splits(name, holdout_fraction, split_seed,
                                                                               threads)
        native_size, image_format = None, next(iter(formats)) if len(formats) == 1 else None
    elif _looks_like_path(dataset):
        raise UnknownDatasetError(f"dataset {dataset!r} is not a folder (expected a tfds name or a folder of class "
                                  "sub-folders, PATH/CLASS/IMAGE.jpg)")
    else:
        kind, name = "tfds", dataset
        data_dir = data.resolve_data_dir(data_dir)
        info = _tfds_builder(dataset, data_dir, download).info
        image_key, label_key = _image_and_label_keys(dataset, info)
        class_names = tuple(info.features[label_key].names)
        train, evaluation, note = _tfds_splits(dataset, info, holdout_fraction, split_seed)
        shape = info.features[image_key].shape
        native_size = shape[0] if shape[0] is not None and shape[0] == shape[1] else None
        encoding = info.features[image_key].encoding_format  # None: stored as given (any format)
        image_format = encoding.upper() if encoding else None
    size = image_size or native_size or DEFAULT_IMAGE_SIZE
    if augmentation is None:
        augmentation = ("cifar" if known.augment else "none") if known and size == native_size else \
            "cifar" if size <= 32 else "imagenet"
    description = DatasetDescription(name, kind, size, class_names, augmentation, train, evaluation, note,
                                      Statistics((0.0,) * 3, (1.0,) * 3, "not yet computed"), holdout_fraction,
                                      split_seed, data_dir, image_key, label_key, report, image_format)
    if isinstance(statistics, dict):
        statistics = Statistics.from_json(statistics)
    if statistics is None and pretrained:
        statistics = imagenet_statistics(pretrained)
    if statistics is None and known:
        statistics = Statistics(known.mean, known.std, f"{known.name} train split (table)")
    if statistics is None:
        statistics = compute_statistics(description, threads=threads)
    return dataclasses.replace(description, statistics=statistics)


# ------------------------------------------------------------------------------------------------------ pipelines --

def pipeline_options(threads: int):
    """This machine's :func:`keras_convnets.training.performance.dataset_options` for a pipeline of ``threads``."""
    from keras_convnets.training import performance

    return performance.dataset_options(threads=threads)


def _threads(description: DatasetDescription, threads: int | None) -> int:
    """``threads`` if given, else what the runtime settings give a pipeline of this kind (performance decides)."""
    from keras_convnets.training import performance

    if threads is not None:
        return threads
    return performance.input_threads(decodes_images=description.augmentation == "imagenet")


def _encoded_examples(description: DatasetDescription, split: Split, *, shuffle_seed: int | None = None):
    """``(encoded image bytes, int64 label)`` of ``split`` in file order, or shuffled by ``shuffle_seed``
    (reshuffled each epoch)."""
    import tensorflow as tf

    if description.kind == "folder":
        ds = tf.data.Dataset.from_tensor_slices((list(split.files), np.asarray(split.labels, np.int64)))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(split.files), seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds.map(lambda path, label: (tf.io.read_file(path), label), num_parallel_calls=tf.data.AUTOTUNE)
    import tensorflow_datasets as tfds

    builder = tfds.builder(description.name, data_dir=description.data_dir)
    shuffle_files = shuffle_seed is not None and split.holdout is None  # held-out membership needs file order
    read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed, shuffle_reshuffle_each_iteration=True) \
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
        ds = ds.shuffle(min(split.count, SHUFFLE_BUFFER), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds


def _uses_cifar_pipeline(description: DatasetDescription) -> bool:
    """The CIFAR-family tfds datasets at their own size, with their own splits: today's pipeline, unchanged."""
    return (description.kind == "tfds" and description.name in data.DATASETS and description.image_size == 32
            and description.augmentation != "imagenet" and description.evaluation.holdout is None)


def train_dataset(description: DatasetDescription, batch_size: int, *, seed: int = 0, threads: int | None = None,
                  drop_remainder: bool = False, crop_decode_jpeg: bool = True, per_image=None):
    """The training pipeline: shuffled (again each epoch, reproducibly from ``seed``), augmented per image,
    batched: ``(uint8 [B, S, S, 3], int64 [B])``. ``crop_decode_jpeg``: decode JPEGs cropped
    (:func:`keras_convnets.training.transforms.decode_train_transform`: 1.1-1.6x the images/s of decoding whole on
    256-320 px JPEGs in two runs here, benchmarks/pipeline_imagenet.py); False: decode whole, then crop (the same
    crops). ``per_image``: a further ``(uint8 image, seed) -> uint8 image`` op after the usual augmentation (the
    modern recipe's, :func:`keras_convnets.training.transforms.chain`)."""
    import tensorflow as tf

    from keras_convnets.training import transforms

    checks.positive_int("batch_size", batch_size)
    if _uses_cifar_pipeline(description):
        return data.load_dataset(description.name, description.train.source, batch_size=batch_size, training=True,
                                 augmentation=description.augment, seed=seed, data_dir=description.data_dir,
                                 drop_remainder=drop_remainder, per_image=per_image)
    threads = _threads(description, threads)
    size = description.image_size
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    if description.augmentation == "imagenet":
        jpeg = None if description.image_format is None else description.image_format == "JPEG"

        def crop(encoded, image_seed):
            if crop_decode_jpeg:
                return transforms.decode_train_transform(encoded, size, image_seed, jpeg)
            return transforms.train_transform(transforms.decode_rgb(encoded), size, image_seed)

        augment = transforms.chain(crop, per_image)

        ds = tf.data.Dataset.zip((_encoded_examples(description, description.train, shuffle_seed=seed), seeds))
        ds = ds.map(lambda example, s: (augment(example[0], s), example[1]), num_parallel_calls=threads)
    else:  # small images: decode and size once, cache, then shuffle and augment per epoch
        ds = _encoded_examples(description, description.train).map(
            lambda encoded, label: (transforms.eval_transform(transforms.decode_rgb(encoded), size, 1.0), label),
            num_parallel_calls=threads).cache()
        ds = ds.shuffle(description.train.count, seed=seed, reshuffle_each_iteration=True)
        if description.augmentation == "cifar" or per_image is not None:
            transform = transforms.chain(transforms.augment if description.augmentation == "cifar" else None,
                                         per_image)
            ds = tf.data.Dataset.zip((ds, seeds)).map(lambda example, s: (transform(example[0], s), example[1]),
                                                      num_parallel_calls=threads)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    return ds.with_options(pipeline_options(threads))


def eval_dataset(description: DatasetDescription, batch_size: int, *, threads: int | None = None,
                 crop_fraction: float | None = None, interpolation: str = "bilinear"):
    """The evaluation pipeline, in file order: short side resized, centre crop (the exported model's own
    preprocessing), batched: ``(uint8 [B, S, S, 3], int64 [B])``. ``crop_fraction`` (default: the description's)
    and ``interpolation``: another view's, e.g. a converted checkpoint's export (224/256, bicubic)."""
    import tensorflow as tf

    from keras_convnets.training import transforms

    checks.positive_int("batch_size", batch_size)
    if _uses_cifar_pipeline(description):
        return data.load_dataset(description.name, description.evaluation.source, batch_size=batch_size,
                                 training=False, data_dir=description.data_dir)
    threads = _threads(description, threads)
    size, fraction = description.image_size, crop_fraction or description.crop_fraction
    ds = _encoded_examples(description, description.evaluation).map(
        lambda encoded, label: (transforms.eval_transform(transforms.decode_rgb(encoded), size, fraction,
                                                          interpolation), label),
        num_parallel_calls=threads)
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return ds.with_options(pipeline_options(threads))


def compute_statistics(description: DatasetDescription, max_images: int = STATISTICS_IMAGES,
                       threads: int | None = None) -> Statistics:
    """Per-channel mean and std (pixels in [0, 1]) of up to ``max_images`` training images as decoded (any size),
    each image weighing the same: the first ones in file order for tfds (tfds shuffles examples when it prepares a
    dataset), evenly spaced over the (class-sorted) file list for a folder. Deterministic; float64."""
    import tensorflow as tf

    from keras_convnets.training import transforms

    train = description.train
    if description.kind == "folder" and train.count > max_images:
        picked = np.linspace(0, train.count - 1, max_images).round().astype(int)
        train = dataclasses.replace(train, files=tuple(train.files[i] for i in picked),
                                    labels=tuple(train.labels[i] for i in picked), count=max_images)

    def moments(encoded, label):
        pixels = tf.reshape(tf.cast(transforms.decode_rgb(encoded), tf.float64) / 255.0, [-1, 3])
        return tf.reduce_mean(pixels, 0), tf.reduce_mean(tf.square(pixels), 0)

    threads = threads or os.cpu_count() or 1
    ds = _encoded_examples(description, train).take(max_images).map(moments, num_parallel_calls=threads)
    first, second, count = np.zeros(3), np.zeros(3), 0
    for mean, square in ds.with_options(pipeline_options(threads)).as_numpy_iterator():
        first, second, count = first + mean, second + square, count + 1
    if count == 0:
        raise ValueError(f"{description.name}: no training images to compute statistics from")
    mean = first / count
    std = np.sqrt(np.maximum(second / count - mean ** 2, 1e-12))
    return Statistics(tuple(float(v) for v in mean), tuple(float(v) for v in std),
                      f"computed from {count:,} training images")
