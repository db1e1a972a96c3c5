"""The input pipelines: seeded per-image tf.data pipelines of a :class:`~keras_convnets.data.catalog.
DatasetDescription` that yield ``(uint8 [B, S, S, 3], int64 [B])``.

Every training pipeline is a stream of epochs, each built by one function of the epoch's seed
(:func:`epoch_seed`): shuffled, augmented per image (:func:`_seeded_per_image`: each image its own seed, so every
image of a batch gets its own crop), batched, then mixed per batch when asked (:func:`_seeded_per_batch`). A run's
stream (:func:`train_dataset` with ``epochs``) draws epoch ``e`` from ``(seed, e)`` alone, so a resumed run sees the
batches the uninterrupted run saw; a dataset for a loop of your own draws a new epoch seed each time it is iterated.
The CIFAR papers' datasets at their own size take the papers' pipeline (:func:`cifar_pipeline`: decode, cache,
shuffle over the whole split, pad 4, random 32x32 crop, flip: He et al. 2016, section 4.2; Keras' ``RandomCrop``
would crop a whole batch at one place); other small images are decoded and sized once, cached, then augmented per
epoch; larger ones are decoded in the pipeline after shuffling (tfds images are read encoded), so a large dataset's
shuffle buffer holds compressed bytes. Evaluation (:func:`eval_dataset`): file order, the short side resized and
centre-cropped (:func:`keras_convnets.data.transforms.eval_transform`).

Normalization is *not* done here: it is the first layer of the trained model
(:func:`keras_convnets.data.preprocessing.preprocessing_model`), so the exported SavedModel takes raw ``uint8``
images. Pipeline builders take ``settings`` (a :class:`keras_convnets.runtime.settings.RuntimeSettings`; None: this
machine's). TensorFlow is imported only when a pipeline is built.
"""

import contextlib
from typing import Optional

from keras_convnets import checks
from keras_convnets.data import catalog, transforms
from keras_convnets.data.catalog import DatasetDescription, dataset_spec, load_split
from keras_convnets.runtime import settings as runtime_settings


def pipeline_options(threads: int | None = None, settings=None):
    """:func:`keras_convnets.runtime.settings.dataset_options` of ``settings`` (None: this machine's) for a
    pipeline of ``threads`` (None: the settings' own)."""
    return runtime_settings.dataset_options(settings, threads=threads)


def _threads(description: DatasetDescription, threads: int | None, settings) -> int:
    """``threads`` if given, else what the runtime settings give a pipeline of this kind."""
    if threads is not None:
        return threads
    return runtime_settings.input_threads(description.augmentation == "imagenet", settings)


def _seeded_per_image(examples, first, then, seed, parallel):
    """``(image, label)`` examples with ``first`` and then ``then`` (either may be None:
    :func:`keras_convnets.data.transforms.chain`) applied to each image, seeded by the image's own draw of
    ``tf.data.Dataset.random(seed)`` (``seed``: an int or an int64 tensor); ``examples`` as they are when both are
    None."""
    import tensorflow as tf

    if first is None and then is None:
        return examples
    transform = transforms.chain(first, then)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=False).batch(2)
    return tf.data.Dataset.zip((examples, seeds)).map(
        lambda example, image_seed: (transform(example[0], image_seed), example[1]), num_parallel_calls=parallel)


def _seeded_per_batch(batches, op, seed):
    """``(images, labels)`` batches with ``op(images, labels, seed)`` applied to each, seeded by the batch's own draw
    of ``tf.data.Dataset.random(seed)``; ``batches`` as they are when ``op`` is None."""
    import tensorflow as tf

    if op is None:
        return batches
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=False).batch(2)
    return tf.data.Dataset.zip((batches, seeds)).map(lambda batch, batch_seed: op(batch[0], batch[1], batch_seed),
                                                     num_parallel_calls=tf.data.AUTOTUNE)


def _batched(examples, batch_size: int, *, drop_remainder: bool = False, threads: int | None = None, settings=None):
    """``examples`` batched, prefetched, with the runtime settings' options for a pipeline of ``threads``."""
    import tensorflow as tf

    ds = examples.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    return ds.with_options(pipeline_options(threads, settings))


#: Epoch ``e`` of a run seeded ``seed`` draws from ``seed * EPOCH_SEED_STRIDE + e`` (:func:`epoch_seed`).
EPOCH_SEED_STRIDE = 1_000_003


def epoch_seed(seed, epoch):
    """The seed of epoch ``epoch`` (0-based) of a run seeded ``seed``: the epoch's shuffle, per-image and per-batch
    draws all derive from it, so they depend on ``(seed, epoch)`` alone."""
    return seed * EPOCH_SEED_STRIDE + epoch


def _epoch_streams(seed):
    """The shuffle, per-image and per-batch seeds of an epoch seeded ``seed`` (an int64 tensor)."""
    return 3 * seed, 3 * seed + 1, 3 * seed + 2


def cifar_pipeline(examples, batch_size: int, *, training: bool = True, augment: bool = True, seed: int = 0,
                   cache: bool = True, drop_remainder: bool = False, per_image=None, settings=None):
    """The CIFAR papers' pipeline of a split's decoded ``(uint8 image, int64 label)`` examples (:func:`load_split`):
    cached; in training shuffled over the whole split (again each iteration, reproducibly from ``seed``) and, per
    image, padded, cropped and flipped (:func:`keras_convnets.data.transforms.augment`) when ``augment``, then
    ``per_image`` (seeded by :func:`keras_convnets.data.transforms.extra_seed` of the image's seed, so the crops
    and flips stay those of a run without it); batched."""

    if cache:
        examples = examples.cache()
    if not training:
        return _batched(examples, batch_size, drop_remainder=drop_remainder, settings=settings)
    epoch = _cifar_epoch(examples, augment, per_image)
    def batches(seed):
        with _without_graph_seed():
            return epoch(seed).batch(batch_size, drop_remainder=drop_remainder)

    return _epochs(_iteration_seeds(seed), batches, options=pipeline_options(settings=settings))


def _cifar_epoch(cached, augment: bool, per_image):
    """One training epoch of cached CIFAR examples, from its seed: shuffled over the whole split, padded, cropped
    and flipped per image (when ``augment``), then ``per_image``."""
    import tensorflow as tf

    size = int(cached.cardinality())

    def epoch(seed):
        shuffle_seed, image_seed, _ = _epoch_streams(seed)
        examples = cached.shuffle(size if size > 0 else 50_000, seed=shuffle_seed, reshuffle_each_iteration=False)
        return _seeded_per_image(examples, transforms.augment if augment else None, per_image, image_seed,
                                 tf.data.AUTOTUNE)

    return epoch


def _iteration_seeds(seed: int):
    """One epoch seed per iteration of a dataset, a new one each time it is iterated (reproducibly from ``seed``):
    what a dataset made for a user's own loop or ``fit(epochs=N)`` takes."""
    import tensorflow as tf

    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)


def _run_seeds(seed: int, first_epoch: int, epochs: int):
    """The seeds of epochs ``first_epoch`` .. ``epochs - 1`` of a run (:func:`epoch_seed`)."""
    import tensorflow as tf

    return tf.data.Dataset.range(first_epoch, epochs).map(lambda epoch: epoch_seed(tf.constant(seed, tf.int64), epoch))


@contextlib.contextmanager
def _without_graph_seed():
    """While an epoch's pipeline is traced: no graph-level seed, so its draws depend on the epoch's seed alone, not
    on a global ``tf.random.set_seed`` (TensorFlow mixes that into every op seed, and with a global seed of 0 its
    ``get_seed`` cannot take a seed tensor at all: "Using a symbolic tf.Tensor as a Python bool")."""
    import tensorflow as tf

    graph = tf.compat.v1.get_default_graph()
    previous, graph.seed = graph.seed, None
    try:
        yield
    finally:
        graph.seed = previous


def _epochs(seeds, batches, *, options):
    """The batches of one epoch per seed of ``seeds`` (``batches(seed)``: one epoch's), prefetched, with
    ``options``."""
    import tensorflow as tf

    return seeds.flat_map(batches).prefetch(tf.data.AUTOTUNE).with_options(options)


def _uses_cifar_pipeline(description: DatasetDescription) -> bool:
    """The CIFAR-family tfds datasets at their own size, with their own splits: the papers' pipeline."""
    return (description.kind == "tfds" and description.name in catalog.DATASETS and description.image_size == 32
            and description.augmentation != "imagenet" and description.evaluation.holdout is None)


def _training_epoch(description: DatasetDescription, threads: int, crop_decode_jpeg: bool, per_image, settings):
    """``epoch(seed) -> (uint8 image, int64 label) examples`` of one training epoch of ``description``, its order
    and augmentation drawn from ``seed`` alone; what is decoded once (CIFAR splits, small images) is cached outside
    it and shared by every epoch."""

    if _uses_cifar_pipeline(description):
        examples = load_split(description.name, description.train.source, description.data_dir, settings=settings)
        return _cifar_epoch(examples.cache(), description.augment, per_image)
    size = description.image_size
    if description.augmentation == "imagenet":
        jpeg = None if description.image_format is None else description.image_format == "JPEG"

        def crop(encoded, image_seed):
            if crop_decode_jpeg:
                return transforms.decode_train_transform(encoded, size, image_seed, jpeg)
            return transforms.train_transform(transforms.decode_rgb(encoded), size, image_seed)

        def photos(seed):
            shuffle_seed, image_seed, _ = _epoch_streams(seed)
            examples = catalog.encoded_examples(description, description.train, shuffle_seed=shuffle_seed)
            return _seeded_per_image(examples, crop, per_image, image_seed, threads)

        return photos
    # small images: decode and size once, cache, then shuffle and augment per epoch
    cached = catalog.encoded_examples(description, description.train).map(
        lambda encoded, label: (transforms.eval_transform(transforms.decode_rgb(encoded), size, 1.0), label),
        num_parallel_calls=threads).cache()

    def small(seed):
        shuffle_seed, image_seed, _ = _epoch_streams(seed)
        examples = cached.shuffle(description.train.count, seed=shuffle_seed, reshuffle_each_iteration=False)
        return _seeded_per_image(examples, transforms.augment if description.augmentation == "cifar" else None,
                                 per_image, image_seed, threads)

    return small


def train_dataset(description: DatasetDescription, batch_size: int, *, seed: int = 0, epochs: int | None = None,
                  first_epoch: int = 0, steps_per_epoch: int | None = None, threads: int | None = None,
                  drop_remainder: bool = False, crop_decode_jpeg: bool = True, per_image=None, per_batch=None,
                  settings=None):
    """The training pipeline: shuffled, augmented per image, batched: ``(uint8 [B, S, S, 3], int64 [B])``.

    Args:
        description: the dataset (:func:`describe`).
        batch_size: images per batch (the global batch of a run).
        seed: what every draw derives from.
        epochs: None: each iteration of the dataset is one epoch, a new order each time (reproducibly from
            ``seed``), for a loop of your own or ``fit(epochs=N)``. A number: one dataset of the run's epochs
            ``first_epoch`` .. ``epochs - 1`` in a row, epoch ``e`` drawn from :func:`epoch_seed` ``(seed, e)``
            alone, so a run resumed at epoch ``e`` sees the batches the uninterrupted run saw (``fit`` it with
            ``steps_per_epoch``).
        first_epoch: the first epoch of that stream (a resumed run's).
        steps_per_epoch: at most that many batches of each epoch.
        threads: the input pipeline's threads (default: the runtime settings').
        drop_remainder: drop each epoch's last, partial batch.
        crop_decode_jpeg: decode JPEGs cropped (:func:`keras_convnets.data.transforms.decode_train_transform`:
            faster than decoding whole: benchmarks/RESULTS.md, its first table); False: decode whole, then crop
            (the same crops).
        per_image: a further ``(uint8 image, seed) -> uint8 image`` op after the usual augmentation (the modern
            recipe's, :func:`keras_convnets.data.transforms.chain`).
        per_batch: an ``(images, labels, seed) -> (images, labels)`` op on each batch (mixup / cutmix,
            :func:`keras_convnets.data.augment.per_batch_op`), seeded per batch from the epoch's seed.
        settings: the runtime settings (:mod:`keras_convnets.runtime.settings`).

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` batches.
    """
    checks.positive_int("batch_size", batch_size)
    threads = _threads(description, threads, settings)
    epoch = _training_epoch(description, threads, crop_decode_jpeg, per_image, settings)

    def batches(seed):
        with _without_graph_seed():
            ds = _seeded_per_batch(epoch(seed).batch(batch_size, drop_remainder=drop_remainder), per_batch,
                                   _epoch_streams(seed)[2])
        return ds if steps_per_epoch is None else ds.take(steps_per_epoch)

    seeds = _iteration_seeds(seed) if epochs is None else _run_seeds(seed, first_epoch, epochs)
    cifar = _uses_cifar_pipeline(description)
    return _epochs(seeds, batches, options=pipeline_options(None if cifar else threads, settings))


def eval_dataset(description: DatasetDescription, batch_size: int, *, threads: int | None = None,
                 crop_fraction: float | None = None, interpolation: str = "bilinear", settings=None):
    """The evaluation pipeline, in file order: short side resized, centre crop (the exported model's own
    preprocessing), batched: ``(uint8 [B, S, S, 3], int64 [B])``. ``crop_fraction`` (default: the description's)
    and ``interpolation``: another view's, e.g. a converted checkpoint's export (224/256, bicubic)."""
    checks.positive_int("batch_size", batch_size)
    if _uses_cifar_pipeline(description):
        examples = load_split(description.name, description.evaluation.source, description.data_dir,
                              settings=settings)
        return cifar_pipeline(examples, batch_size, training=False, settings=settings)
    threads = _threads(description, threads, settings)
    size, fraction = description.image_size, crop_fraction or description.crop_fraction
    ds = catalog.encoded_examples(description, description.evaluation).map(
        lambda encoded, label: (transforms.eval_transform(transforms.decode_rgb(encoded), size, fraction,
                                                          interpolation), label),
        num_parallel_calls=threads)
    return _batched(ds, batch_size, threads=threads, settings=settings)


def padded_batches(dataset, multiple: int, whole: bool = False):
    """``dataset``'s ``(images, labels)`` batches as ``(images, labels, weights)`` with every batch padded to a
    multiple of ``multiple`` rows: the padding repeats the batch's first row with weight 0, every real row has weight
    1. For evaluating on devices that each take an equal share of every batch (``keras.distribution.DataParallel``
    over ``multiple`` devices): weighted metrics (accuracy, compiled as ``weighted_metrics``) count the real rows only;
    Keras' loss tracker weighs a batch by its padded size, so the mean loss is the real rows' sum over
    ``N + padding`` (at most ``multiple - 1`` rows of padding over the whole evaluation: the last batch's).
    ``whole``: ``multiple`` is the dataset's batch size and every batch is padded to exactly that, said in the static
    shape (what Keras' multi-process sharding reads, through tf.data's ``compute_batch_size``)."""
    import tensorflow as tf

    checks.positive_int("multiple", multiple)

    def pad(images, labels):
        count = tf.shape(images)[0]
        extra = (multiple - count % multiple) % multiple
        first = tf.zeros([extra], tf.int32)
        weights = tf.concat([tf.ones([count], tf.float32), tf.zeros([extra], tf.float32)], 0)
        padded = (tf.concat([images, tf.gather(images, first)], 0), tf.concat([labels, tf.gather(labels, first)], 0),
                  weights)
        if whole:
            padded = tuple(tf.ensure_shape(t, [multiple] + [None] * (len(t.shape) - 1)) for t in padded)
        return padded

    return dataset.map(pad)


def load_dataset(name: str, split: str = "train", *, batch_size: int = 128, training: bool = True,
                 augmentation: Optional[bool] = None, seed: int = 0, data_dir: Optional[str] = None,
                 download: bool = False, cache: bool = True, drop_remainder: bool = False, per_image=None,
                 settings=None):
    """A batched pipeline of one split of a dataset of :data:`~keras_convnets.data.catalog.DATASETS` by name: the
    papers' pipeline (:func:`cifar_pipeline`) of the split's decoded examples.

    Args:
        name: ``"cifar10"``, ``"cifar100"`` or ``"svhn_cropped"``.
        split: a tfds split.
        batch_size: images per batch.
        training: cached, shuffled over the whole split (again each time the dataset is iterated, reproducibly from
            ``seed``) and augmented per image when ``augmentation``; False: file order, no augmentation.
        augmentation: None: the dataset's :class:`~keras_convnets.data.catalog.DatasetSpec` setting.
        seed: what every draw derives from.
        data_dir: the tensorflow_datasets directory; download: prepare it if missing.
        cache: cache the decoded split in memory.
        drop_remainder: drop the last partial batch.
        per_image: a further ``(uint8 image, seed) -> uint8 image`` op after pad-crop-flip in training (the modern
            recipe's, :mod:`keras_convnets.data.augment`), seeded by
            :func:`~keras_convnets.data.transforms.extra_seed` of the image's seed, so the crops and flips stay
            those of a run without it.
        settings: the run's :class:`~keras_convnets.runtime.settings.RuntimeSettings` (None: this machine's).

    Returns:
        ``(uint8 images [B, H, W, 3], int64 labels [B])`` batches; the model normalizes the images.
    """
    spec = dataset_spec(name)
    checks.positive_int("batch_size", batch_size)
    checks.one_of("augmentation (None: the dataset's usual setting)", augmentation, (None, True, False))
    return cifar_pipeline(load_split(name, split, data_dir, download, settings=settings), batch_size,
                          training=training, augment=spec.augment if augmentation is None else augmentation,
                          seed=seed, cache=cache, drop_remainder=drop_remainder, per_image=per_image,
                          settings=settings)
