"""End to end: images/s of training DenseNet-121 on tfds CIFAR-10 our way against the plain way a user would.

* ``plain``: ``keras.applications.DenseNet121(weights=None, input_shape=(32, 32, 3), classes=10)``, ``tfds.load``,
  the tutorial pipeline (map to float, cache, shuffle, per-image pad-crop-flip, batch, prefetch(AUTOTUNE)) and
  ``model.fit`` with every default (TensorFlow's default kernels, which on a CPU without AVX512-VNNI are Eigen's,
  steps_per_execution=1, TensorFlow's own thread pools, default tf.data options).
* ``ours``: ``keras_convnets.DenseNet121`` (layer for layer the same function),
  ``keras_convnets.data.pipelines.load_dataset`` (the same augmentation maths: per-image pad 4, random crop, flip;
  uint8 in, normalised inside the model) and :mod:`keras_convnets.runtime.settings`'s defaults (oneDNN kernels,
  threads, tf.data options, compile options) and our fused batch norm, ``model.fit``.

Same model, batch, optimizer (SGD momentum 0.9), loss and augmentation: nothing that changes the maths. Each side
runs in its own process (thread pools are per process), interleaved ``plain ours plain ours ...``; every epoch's
images/s is printed (the first epoch, which traces and fills the cache, is reported apart) and the median ratio of
rounds.

    python benchmarks/bench_e2e.py --model densenet121 --batch 64 --epochs 2 --rounds 2
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KERAS_NAMES = {"densenet121": "DenseNet121", "resnet50": "ResNet50", "resnet50v2": "ResNet50V2"}


def plain_dataset(batch, data_dir, steps):
    import tensorflow as tf
    import tensorflow_datasets as tfds
    ds = tfds.load("cifar10", split="train", data_dir=data_dir, as_supervised=True)

    def normalize(image, label):
        return tf.cast(image, tf.float32) / 255.0, label

    def augment(image, label):
        image = tf.image.pad_to_bounding_box(image, 4, 4, 40, 40)
        image = tf.image.random_crop(image, (32, 32, 3))
        return tf.image.random_flip_left_right(image), label

    ds = ds.map(normalize, num_parallel_calls=tf.data.AUTOTUNE).cache().shuffle(5000)
    ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE).batch(batch).prefetch(tf.data.AUTOTUNE)
    return ds.repeat().take(steps) if steps else ds


def worker(args):
    ours = args.side == "ours"
    if ours:
        from keras_convnets.runtime import settings as runtime_settings
        from keras_convnets.runtime import startup
        startup.prefer_onednn()
        startup.configure_threads()
    from keras_convnets.models.backend import keras
    data_dir = args.data_dir
    if ours:
        import keras_convnets
        from keras_convnets.data import catalog, pipelines, preprocessing
        from keras_convnets.models import registry
        from keras_convnets.runtime import settings as runtime_settings
        from keras_convnets.runtime import startup
        ds = pipelines.load_dataset("cifar10", "train", batch_size=args.batch, training=True, data_dir=data_dir)
        core = getattr(keras_convnets, KERAS_NAMES[args.model])(weights=None, input_shape=(32, 32, 3), classes=10)
        # The pipeline gives uint8; the model normalises inside the graph, as keras_convnets.training builds it.
        model = preprocessing.preprocessing_model(core, catalog.dataset_spec("cifar10"), (32, 32, 3))
        compile_kwargs = runtime_settings.compile_options(registry.model_info(args.model))
    else:
        ds = plain_dataset(args.batch, data_dir, 0)
        model = getattr(keras.applications, KERAS_NAMES[args.model])(weights=None, input_shape=(32, 32, 3),
                                                                     classes=10)
        compile_kwargs = {}
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"], **compile_kwargs)
    rates = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            rates.append(self.images / (time.perf_counter() - self.start))

    timer = Timer()
    timer.images = args.steps * args.batch
    if args.steps:
        ds = ds.repeat()
    model.fit(ds, epochs=args.epochs + 1, steps_per_epoch=args.steps or None, verbose=0, callbacks=[timer])
    print("RESULT " + json.dumps({"side": args.side, "first": rates[0], "rates": rates[1:]}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="densenet121", choices=sorted(KERAS_NAMES))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the first")
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch (0: the whole split)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("TFDS_DATA_DIR") or os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tensorflow_datasets")))
    parser.add_argument("--side", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        return worker(args)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)  # each side runs with its own default kernels
    rates = {"plain": [], "ours": []}
    ratios = []
    print(f"load before: {os.getloadavg()}", flush=True)
    for round_ in range(args.rounds):
        medians = {}
        for side in ("plain", "ours") if round_ % 2 == 0 else ("ours", "plain"):
            cmd = [sys.executable, __file__, "--side", side, "--model", args.model, "--batch", str(args.batch),
                   "--epochs", str(args.epochs), "--steps", str(args.steps), "--data-dir", args.data_dir]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            line = [text for text in out.stdout.splitlines() if text.startswith("RESULT ")]
            if not line:
                print(f"{side} failed:\n{out.stderr[-3000:]}", flush=True)
                return 0
            r = json.loads(line[0][7:])
            rates[side].extend(r["rates"])
            medians[side] = statistics.median(r["rates"])
            print(f"round {round_} {side:>5}: first epoch {r['first']:6.1f} img/s; then "
                  + " ".join(f"{x:6.1f}" for x in r["rates"]) + f"  (load {os.getloadavg()[0]:.2f})", flush=True)
        ratios.append(medians["ours"] / medians["plain"])
    print(f"\nmedian img/s: plain {statistics.median(rates['plain']):.1f}, "
          f"ours {statistics.median(rates['ours']):.1f}; "
          f"slowest epoch: plain {min(rates['plain']):.1f}, ours {min(rates['ours']):.1f}")
    print(f"ours / plain per round: {' '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}")
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
