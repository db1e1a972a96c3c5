"""``keras-convnets bench``: training-step and inference throughput (images/s) and achieved GFLOP/s of registered
models, optionally side by side with keras.applications' model of the same architecture.

Measured for a shared machine (CONTRIBUTING.md, "Benchmarks"): after a warm-up, the candidates are timed interleaved
(A B A B ...) in short rounds on a fixed random batch; each round gives a ratio ours / keras.applications, and the
median ratio is printed. This prints numbers and returns them; it never fails on a time.

    keras-convnets bench --models resnet20,densenet_bc_100 --batch 64
    keras-convnets bench --models resnet50,resnet50v2,densenet121 --size 32 --compare-keras
    python benchmarks/bench.py --models resnet50 --size 224 --batch 8 --compare-keras --mode train

GFLOP/s counts a training step as 3x the forward multiply-adds (forward + two backward products) and reports
multiply-adds, the torchvision convention of :mod:`keras_convnets.models.flops`.
"""

import argparse
import os
import statistics
import time
from typing import Optional, Tuple

import numpy as np

from keras_convnets import checks

MODES = ("train", "infer")


def keras_twins() -> dict:
    """Registered model -> keras.applications function of the same architecture (layer for layer): the models
    registered with keras.applications' weights, whose factories carry keras.applications' names."""
    from keras_convnets.models import registry
    return {name: info.factory.__name__ for name, info in registry.REGISTRY.items() if info.weights}


def build(name: str, size: Optional[int] = None, source: str = "ours", classes: Optional[int] = None):
    """Registered model ``name`` (``source="ours"``) or keras.applications' one, untrained, at ``size`` x ``size``."""
    from keras_convnets.models import registry
    from keras_convnets.models.backend import keras
    info = registry.model_info(name)
    size = size or info.input_size
    classes = classes or info.default_classes
    if source == "keras":
        twins = keras_twins()
        if info.name not in twins:
            raise ValueError(f"keras.applications has no {name}; it has {', '.join(twins)}")
        return getattr(keras.applications, twins[info.name])(weights=None, input_shape=(size, size, 3),
                                                             classes=classes)
    return info.build(weights=None, input_shape=(size, size, 3), classes=classes)


def train_step_fn(model, optimizer, loss):
    """A bare ``tf.function`` train step: forward, loss (+ the model's regularization losses), gradients, update."""
    import tensorflow as tf

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            predictions = model(images, training=True)
            value = loss(labels, predictions)
            if model.losses:
                value = value + tf.add_n(model.losses)
        grads = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return value
    return step


def infer_fn(model):
    import tensorflow as tf
    return tf.function(lambda images: model(images, training=False))


def _sync(value):
    return float(np.asarray(value).ravel()[0])


class Candidate:
    """One model ready to be timed: its train step and inference function on a fixed random batch."""

    def __init__(self, label, model, batch, mode):
        import tensorflow as tf

        from keras_convnets.models.backend import keras
        from keras_convnets.models.flops import count_flops
        self.label, self.model, self.batch = label, model, batch
        self.flops = count_flops(model)
        shape = (batch,) + tuple(int(s) for s in model.input_shape[1:])
        classes = int(model.output_shape[-1])
        rng = np.random.default_rng(0)
        self.images = tf.constant(rng.random(shape, dtype=np.float32))
        self.labels = tf.constant(rng.integers(0, classes, (batch,)), dtype=tf.int64)
        if mode == "train":
            self.fn = train_step_fn(model, keras.optimizers.SGD(0.01, momentum=0.9),
                                    keras.losses.SparseCategoricalCrossentropy())
            self.call = lambda: self.fn(self.images, self.labels)
        else:
            self.fn = infer_fn(model)
            self.call = lambda: self.fn(self.images)

    def time(self, steps):
        """Seconds per step over ``steps`` steps (synchronised once at the end)."""
        start = time.perf_counter()
        for _ in range(steps):
            out = self.call()
        _sync(out)
        return (time.perf_counter() - start) / steps


def measure(candidates, steps=3, rounds=5, warmup=2):
    """Times ``candidates`` interleaved: ``warmup`` untimed steps each, then ``rounds`` rounds of ``steps`` steps of
    every candidate in turn. Returns one list of seconds per step per candidate (one entry per round)."""
    for c in candidates:
        _sync(c.call())  # traces
        if warmup > 0:
            c.time(warmup)
    times = [[] for _ in candidates]
    for r in range(rounds):
        order = range(len(candidates)) if r % 2 == 0 else reversed(range(len(candidates)))  # A B, B A, ...
        for i in order:
            times[i].append(candidates[i].time(steps))
    return times


def bench_model(name, *, size=None, batch=32, mode="train", steps=3, rounds=5, warmup=2, compare_keras=False,
                classes=None):
    """Benchmarks one registered model (and keras.applications' twin); returns a list of result dicts."""
    from keras_convnets.models.backend import keras
    keras.backend.clear_session()
    candidates = [Candidate(f"{name}", build(name, size, "ours", classes), batch, mode)]
    if compare_keras:
        candidates.append(Candidate(f"keras.applications.{keras_twins()[name]}",
                                    build(name, size, "keras", classes), batch, mode))
    times = measure(candidates, steps, rounds, warmup)
    size = size or int(candidates[0].model.input_shape[1])
    results = []
    for c, t in zip(candidates, times):
        per_step = statistics.median(t)
        images_per_s = batch / per_step
        factor = 3 if mode == "train" else 1
        results.append({"model": c.label, "mode": mode, "size": size, "batch": batch,
                        "images_per_s": images_per_s, "gflops": c.flops / 1e9,
                        "gflop_per_s": images_per_s * c.flops * factor / 1e9, "seconds_per_step": t})
    if compare_keras:
        ratios = [b / a for a, b in zip(times[0], times[1])]  # ours' speed / keras' speed, per round
        results[0]["ratio_vs_keras"] = statistics.median(ratios)
        results[0]["ratios"] = ratios
    return results


def _positive(text: str) -> int:
    try:
        return checks.positive_int("the value", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None


def _non_negative(text: str) -> int:
    return 0 if text.strip() == "0" else _positive(text)


def add_arguments(parser):
    """The ``bench`` subcommand's arguments (shared by ``keras-convnets bench`` and benchmarks/bench.py)."""
    parser.add_argument("--models", default="resnet20",
                        help="comma-separated registered names (see `keras-convnets models`)")
    parser.add_argument("--size", type=_positive, default=None, help="input height = width (default: the model's own)")
    parser.add_argument("--batch", type=_positive, default=32)
    parser.add_argument("--mode", default="train,infer", help="train, infer or both (comma-separated)")
    parser.add_argument("--steps", type=_positive, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=_positive, default=5, help="interleaved rounds; the median is reported")
    parser.add_argument("--warmup", type=_non_negative, default=2, help="untimed steps after tracing")
    parser.add_argument("--compare-keras", action="store_true",
                        help="also time keras.applications' model of the same architecture, interleaved")
    parser.add_argument("--classes", type=_positive, default=None)
    parser.add_argument("--threads", default=None, metavar="INTRA,INTER",
                        help="TensorFlow thread pool sizes (default: TensorFlow's choice; "
                             "keras_convnets.runtime.startup.configure_threads)")
    return parser


def add(commands):
    """The ``bench`` subcommand, with :func:`add_arguments`' arguments."""
    p = commands.add_parser("bench", help="throughput benchmarks", description=__doc__.split("\n")[0])
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``keras-convnets bench``: runs :func:`measure_all` on ``args``, prints its table and returns exit status 0.
    Bad arguments are a usage error (one line, exit 2), checked before anything is timed."""
    from keras_convnets.cli.common import UsageError

    try:
        measure_all(args)
    except ValueError as error:  # bad models, modes, sizes
        raise UsageError(str(error)) from None
    return 0


def _threads(text: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
    """``--threads INTRA,INTER`` (either may be empty: TensorFlow's choice) as two sizes, or a ValueError."""
    if not text:
        return None, None
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip() == "" or p.strip().isdigit() and int(p) > 0 for p in parts):
        checks.fail("--threads", "INTRA,INTER: two positive integers, either may be empty", text)
    intra, inter = (int(p) if p.strip() else None for p in parts)
    return intra, inter


def check_arguments(args: argparse.Namespace) -> Tuple[list, list]:
    """The models and modes of ``args``, checked before anything is built or timed (a ValueError names the bad one):
    registered names, modes among :data:`MODES`, keras.applications twins for ``--compare-keras``, an input size the
    models can take."""
    from keras_convnets.models import registry
    models = [registry.model_info(m.strip()).name for m in args.models.split(",") if m.strip()]
    if not models:
        checks.fail("--models", "one or more registered names, comma-separated", args.models)
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    if not modes or any(mode not in MODES for mode in modes):
        checks.fail("--mode", "train, infer or train,infer", args.mode)
    if args.compare_keras:
        twins = keras_twins()
        missing = [m for m in models if m not in twins]
        if missing:
            raise ValueError(f"--compare-keras: keras.applications has no {', '.join(missing)}; "
                             f"it has {', '.join(twins)}")
    _threads(args.threads)
    for name in models:
        smallest = registry.model_info(name).architecture.min_size
        if args.size is not None and args.size < smallest:
            checks.fail("--size", f"at least {smallest} for {name}", args.size)
    return models, modes


def measure_all(args: argparse.Namespace) -> list:
    """Runs the benchmark described by ``args`` (from :func:`add_arguments`), prints a table, returns the results."""
    from keras_convnets.runtime import startup
    startup.prefer_onednn()  # as the keras-convnets command does (a no-op once TensorFlow is imported)
    models, modes = check_arguments(args)
    startup.configure_threads(*_threads(args.threads))
    from keras_convnets.models.flops import format_flops
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"{os.cpu_count()} CPUs; {'oneDNN' if startup.onednn_enabled() else 'Eigen'} kernels", flush=True)
    header = f"{'model':<36} {'mode':<5} {'size':>4} {'batch':>5} {'img/s':>9} {'FLOPs':>7} {'GFLOP/s':>8}  ratio"
    print(header + "\n" + "-" * len(header), flush=True)
    results = []
    for name in models:
        for mode in modes:
            rows = bench_model(name, size=args.size, batch=args.batch, mode=mode, steps=args.steps,
                               rounds=args.rounds, warmup=args.warmup, compare_keras=args.compare_keras,
                               classes=args.classes)
            for row in rows:
                ratio = ""
                if "ratio_vs_keras" in row:
                    ratio = (f"{row['ratio_vs_keras']:.3f} ours/keras (rounds: "
                             + " ".join(f"{r:.2f}" for r in row["ratios"]) + ")")
                print(f"{row['model']:<36} {mode:<5} {row['size']:>4} {row['batch']:>5} {row['images_per_s']:>9.1f} "
                      f"{format_flops(row['gflops'] * 1e9):>7} {row['gflop_per_s']:>8.1f}  {ratio}", flush=True)
            results.extend(rows)
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)
    return results


def main(argv: Optional[list] = None) -> int:
    """benchmarks/bench.py's entry: the subcommand's arguments and checks, argparse's usage error on bad ones."""
    parser = add_arguments(argparse.ArgumentParser(description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    try:
        measure_all(args)
    except ValueError as error:
        parser.error(str(error))
    return 0
