"""Images/s of the ImageNet-style input pipeline at 224x224 (JPEG decode + random-resized crop + flip + batch) on 1 and
N cores, per core, against the images/s ResNet-50 training consumes here.

The JPEGs are the real CIFAR-10 subset's images upscaled to a short side of 256-320 px (ImageNet's photos average
~400x350, so decoding these is a little cheaper than decoding ImageNet), written to a temporary folder of class
folders and read through :func:`keras_convnets.data.pipelines.train_dataset` like a user's photo folder. Also
printed: the same pipeline decoding each JPEG whole before cropping (``crop_decode_jpeg=False``), and decoding it
cropped behind a per-image ``tf.cond`` (what a folder of mixed formats runs), and the one-off decodability check.
A GPU host's need: ~2,500 images/s for ResNet-50 on one current GPU, so cores needed = 2,500 / (images/s per core).

    python benchmarks/pipeline_imagenet.py [--images 512] [--batches 8] [--batch-size 64] [--train-steps 3]
"""

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

from _common import data_dir

GPU_IMAGES_PER_SECOND = 2500


def write_jpegs(root, count, source_dir):
    """``count`` CIFAR-10 images as JPEGs (quality 90) of random size, short side 256-320, in class folders."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_datasets as tfds

    rng = np.random.default_rng(0)
    split = tfds.builder("cifar10", data_dir=source_dir).as_dataset("train", as_supervised=True, shuffle_files=False)
    for i, (image, label) in enumerate(split.take(count).as_numpy_iterator()):
        short, ratio = int(rng.integers(256, 321)), float(rng.uniform(1.0, 1.5))
        size = (short, int(short * ratio)) if i % 2 else (int(short * ratio), short)
        resized = tf.cast(tf.round(tf.image.resize(image, size, method="bicubic")), tf.float32)
        jpeg = tf.io.encode_jpeg(tf.cast(tf.clip_by_value(resized, 0, 255), tf.uint8), quality=90)
        folder = os.path.join(root, f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(os.path.join(folder, f"{i:05d}.jpg"), jpeg)


def pipeline_rate(pipeline, batches):
    """Images/s over ``batches`` batches, after one warm-up batch."""
    iterator = iter(pipeline)
    next(iterator)
    start, count = time.perf_counter(), 0
    for _ in range(batches):
        images, _ = next(iterator)
        count += int(images.shape[0])
    return count / (time.perf_counter() - start)


def resnet50_training_rate(batch_size, steps, description):
    """Images/s of ResNet-50 (224x224, 10 classes) training steps fed from memory, after one warm-up step."""
    import numpy as np
    import tensorflow as tf

    from keras_convnets.data import preprocessing
    from keras_convnets.models import registry
    from keras_convnets.models.backend import keras
    from keras_convnets.training import recipes

    model = preprocessing.preprocessing_model(
        registry.get_model("resnet50", classes=10, weights=None, weight_decay=1e-4), description, (224, 224, 3))
    model.compile(optimizer=recipes.optimizer(recipes.IMAGENET, 10_000),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size, 224, 224, 3), dtype=np.uint8)
    batches = tf.data.Dataset.from_tensors((images, rng.integers(0, 10, batch_size))).repeat()
    model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0)  # traces the train step
    start = time.perf_counter()
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=512, help="JPEGs written (default 512)")
    parser.add_argument("--batches", type=int, default=8, help="batches timed per measurement (default 8)")
    parser.add_argument("--batch-size", type=int, default=64, help="pipeline batch size (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per setting; the median is printed")
    parser.add_argument("--train-batch-size", type=int, default=8, help="ResNet-50 batch (default 8)")
    parser.add_argument("--train-steps", type=int, default=3, help="ResNet-50 steps timed (default 3; 0 skips)")
    parser.add_argument("--data-dir")
    args = parser.parse_args()

    from keras_convnets.runtime import startup

    startup.prefer_onednn()  # as the keras-convnets command does, before TensorFlow is imported
    from keras_convnets.data import catalog, pipelines

    cores = os.cpu_count() or 1
    print(f"CPU: {cpu_name()}, {cores} cores visible, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="pipeline_imagenet-") as root:
        write_jpegs(root, args.images, data_dir(args.data_dir))
        start = time.perf_counter()
        description = catalog.describe(root, image_size=224, statistics=catalog.imagenet_statistics("resnet50"),
                                        holdout_fraction=0.02)
        checked = description.train.count + description.evaluation.count
        print(f"decodability check: {checked / (time.perf_counter() - start):,.0f} files/s on {cores} threads "
              f"({checked} JPEGs, short side 256-320)", flush=True)
        # Every file 8 times: an epoch long enough that the timed batches never cross the pipeline's restart.
        long_epoch = dataclasses.replace(description, train=dataclasses.replace(
            description.train, files=description.train.files * 8, labels=description.train.labels * 8,
            count=description.train.count * 8))
        rates = {}
        for threads in sorted({1, cores}):
            pipelines = {"decode whole, then crop": pipelines.train_dataset(
                             long_epoch, args.batch_size, seed=0, threads=threads, crop_decode_jpeg=False),
                         "decode_and_crop_jpeg (the default)": pipelines.train_dataset(
                             long_epoch, args.batch_size, seed=0, threads=threads),
                         "decode_and_crop_jpeg behind a per-image tf.cond": pipelines.train_dataset(
                             dataclasses.replace(long_epoch, image_format=None), args.batch_size, seed=0,
                             threads=threads, crop_decode_jpeg=True)}
            for label, pipeline in pipelines.items():
                rate = statistics.median(pipeline_rate(pipeline, args.batches) for _ in range(args.rounds))
                rates[threads, label] = rate
                print(f"pipeline, {threads} thread(s), {label}: {rate:,.0f} images/s ({rate / threads:,.0f} per "
                      f"core)", flush=True)
        best = max(rates[cores, label] for label in pipelines)
        per_core = best / cores
        print(f"=> {per_core:,.0f} images/s per core at 224x224: a GPU training ResNet-50 at "
              f"{GPU_IMAGES_PER_SECOND:,} images/s needs ~{GPU_IMAGES_PER_SECOND / per_core:.0f} such cores for "
              "its input", flush=True)
        if args.train_steps:
            trained = resnet50_training_rate(args.train_batch_size, args.train_steps, description)
            print(f"ResNet-50 training here (batch {args.train_batch_size}, 224x224, {cores} cores): {trained:,.1f} "
                  f"images/s; pipeline on {cores} cores / training = {best / trained:,.0f}x", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end (other processes share these cores)")


if __name__ == "__main__":
    main()
