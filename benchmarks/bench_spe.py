"""``steps_per_execution`` in ``model.fit``, measured in one process: two identical models (same weights, same
pipeline), one compiled with ``steps_per_execution=1`` and one with N, trained one epoch each in turn (A B A B ...)
after a warm-up epoch each; the median ratio of their epoch times is printed.

    python benchmarks/bench_spe.py --model resnet20 --batch 64 --steps 24 --spe 8 --rounds 4
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--source", default="ours", choices=["ours", "keras"])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--spe", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--augment", action="store_true")
    args = parser.parse_args(argv)
    from keras_convnets import bench
    from keras_convnets.training import performance
    performance.configure_threads()
    from keras_convnets.models.backend import keras

    ds = bench.cifar_pipeline(args.batch, args.size, augment=args.augment, seed=0,
                              options=performance.dataset_options())
    models = []
    for spe in (1, args.spe):
        model = bench.build(args.model, args.size, args.source, classes=10)
        if models:
            model.set_weights(models[0].get_weights())
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(),
                      metrics=["accuracy"], steps_per_execution=spe)
        models.append(model)
    times = [[], []]
    print(f"load before: {os.getloadavg()}", flush=True)
    for round_ in range(args.rounds + 1):
        for i in (0, 1) if round_ % 2 == 0 else (1, 0):
            start = time.perf_counter()
            models[i].fit(ds, epochs=1, steps_per_epoch=args.steps, verbose=0)
            if round_:  # round 0 traces and warms up
                times[i].append(time.perf_counter() - start)
    images = args.steps * args.batch
    ratios = [a / b for a, b in zip(*times)]
    print(f"{args.model} {args.size}x{args.size} batch {args.batch}: img/s spe=1 "
          + " ".join(f"{images / t:.1f}" for t in times[0]) + f"; spe={args.spe} "
          + " ".join(f"{images / t:.1f}" for t in times[1]))
    print(f"speed ratio spe={args.spe} / spe=1 per round: {' '.join(f'{r:.3f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.3f}")
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
