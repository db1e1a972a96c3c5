"""Images/s the input pipeline delivers alone vs images/s ResNet-20 training consumes, on the real CIFAR-10 subset.

The pipeline must deliver at least 10x what training consumes, so training never waits for data. Measured as
CONTRIBUTING.md ("Benchmarks") asks on a shared machine: after a warm-up, pipeline and training are timed
interleaved (A B A B ...) and the median of each and of the per-round ratio is printed.

    python benchmarks/pipeline_throughput.py [--rounds 5] [--batch-size 128] [--data-dir DIR]
"""

import argparse
import statistics
import time

from _common import data_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-steps", type=int, default=10, help="training steps timed per round")
    parser.add_argument("--data-dir")
    args = parser.parse_args()

    import tensorflow as tf

    from keras_convnets.data import catalog, pipelines, preprocessing
    from keras_convnets.models import registry
    from keras_convnets.models.backend import keras
    from keras_convnets.training import recipes

    directory = data_dir(args.data_dir)
    pipeline = pipelines.load_dataset("cifar10", batch_size=args.batch_size, data_dir=directory, seed=0)
    spec = catalog.dataset_spec("cifar10")
    model = preprocessing.preprocessing_model(registry.get_model("resnet20", weight_decay=1e-4), spec, (32, 32, 3))
    model.compile(optimizer=recipes.optimizer(recipes.RESNET_CIFAR, 10_000),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    images, labels = next(iter(pipeline))
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat()  # training fed from memory: no pipeline cost

    def pipeline_rate():
        start, count = time.perf_counter(), 0
        for x, _ in pipeline:  # one epoch, from the cache
            count += int(x.shape[0])
        return count / (time.perf_counter() - start)

    def training_rate():
        start = time.perf_counter()
        model.fit(batches, steps_per_epoch=args.train_steps, epochs=1, verbose=0, shuffle=False)
        return args.train_steps * args.batch_size / (time.perf_counter() - start)

    pipeline_rate(), training_rate()  # warm-up: fills the cache, traces the train step
    supplied, consumed = [], []
    for i in range(args.rounds):
        supplied.append(pipeline_rate())
        consumed.append(training_rate())
        print(f"round {i + 1}: pipeline {supplied[-1]:,.0f} images/s, ResNet-20 training {consumed[-1]:,.0f} "
              f"images/s, ratio {supplied[-1] / consumed[-1]:.1f}x", flush=True)
    ratios = [s / c for s, c in zip(supplied, consumed)]
    print(f"median: pipeline {statistics.median(supplied):,.0f} images/s (pad-crop-flip, batch {args.batch_size}); "
          f"ResNet-20 training consumes {statistics.median(consumed):,.0f} images/s; "
          f"pipeline / training = {statistics.median(ratios):.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
