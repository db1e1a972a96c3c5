"""What the benchmark scripts share (not part of the installed package): the data directory, the plain CIFAR-10
input pipeline a user would write, and timing a model's train and inference steps on one in-memory batch."""

import os
import statistics
import time


def data_dir(explicit=None):
    """``explicit``, else ``$TFDS_DATA_DIR``, else None (tensorflow_datasets' own default, ~/tensorflow_datasets)."""
    return explicit or os.environ.get("TFDS_DATA_DIR") or None


def time_steps(model, x, y, steps, warmup):
    """Median seconds of one ``train_on_batch`` and of one ``predict_on_batch`` on ``(x, y)`` (a compiled model),
    after ``warmup`` unmeasured calls of each (tracing or compiling, first allocations)."""
    timings = {}
    for kind, step in (("train", lambda: model.train_on_batch(x, y)), ("inference", lambda: model.predict_on_batch(x))):
        for _ in range(warmup):
            step()
        seconds = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            seconds.append(time.perf_counter() - start)
        timings[kind] = statistics.median(seconds)
    return timings


def cifar_pipeline(batch, size=32, augment=False, seed=None, directory=None, options=None):
    """CIFAR-10's train split from tfds as float images in [0, 1], cached and repeated: the plain pipeline a user
    writes. ``augment``: per-image pad-4, random crop and flip after the cache (the papers' augmentation).

    Fails with the reason when the prepared data is not found: a benchmark on random images would measure something
    else without saying so."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    directory = data_dir(directory)
    try:
        ds = tfds.load("cifar10", split="train", data_dir=directory, download=False, as_supervised=True)
    except Exception as error:  # tfds raises several types for "not prepared here"
        raise SystemExit(f"no prepared CIFAR-10 in {directory or 'tfds default directory'} ({type(error).__name__}); "
                         "set TFDS_DATA_DIR to a tensorflow_datasets directory that holds it") from error

    def to_float(image, label):
        image = tf.cast(image, tf.float32) / 255.0
        if size != 32:
            image = tf.image.resize(image, (size, size))
        return image, label

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if augment:
        def pad_crop_flip(image, label):
            image = tf.image.pad_to_bounding_box(image, 4, 4, size + 8, size + 8)
            image = tf.image.random_crop(image, (size, size, 3), seed=seed)
            return tf.image.random_flip_left_right(image, seed=seed), label
        ds = ds.shuffle(1024, seed=seed).map(pad_crop_flip, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.repeat().batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return ds.with_options(options) if options is not None else ds
