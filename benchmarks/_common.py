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


def load_average():
    """``/proc/loadavg``'s three figures as one string (what every benchmark prints beside its numbers)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class FitTimes:
    """Where ``model.fit``'s time goes, from two Keras callbacks: :meth:`callbacks` returns one to put first and one
    to put last in the run's list, so every other callback's work falls between them. Per epoch (``epochs``):

    * ``steps``: each ``train_function`` call (the step's compute and its wait for the next input batch: the
      iterator's ``get_next`` runs inside the compiled function), from the last callback's batch-begin to the first
      one's batch-end;
    * ``callbacks``: the other callbacks' per-batch work (between the two wrappers' batch-begins and batch-ends);
    * ``between``: fit's own loop between a batch's end and the next batch's begin;
    * ``eval``: the validation pass (``on_test_begin`` to ``on_test_end``);
    * ``epoch_end``: from the validation's end (or the last batch's, without one) to the last callback's
      ``on_epoch_end``: fit's metrics and every callback's epoch-end work (history files, the backup, TensorBoard);
    * ``wall``: the first callback's ``on_epoch_begin`` to the last one's ``on_epoch_end``.
    """

    def __init__(self):
        import time
        self.clock = time.perf_counter
        self.epochs = []
        self.mark = {}

    def callbacks(self):
        from keras_convnets.models.backend import keras
        times = self

        class First(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                times.epochs.append({"epoch": epoch + 1, "steps": [], "callbacks": 0.0, "between": 0.0, "eval": 0.0})
                times.mark = {"epoch": times.clock(), "end": None}

            def on_train_batch_begin(self, batch, logs=None):
                now, current = times.clock(), times.epochs[-1]
                if times.mark["end"] is not None:
                    current["between"] += now - times.mark["end"]
                times.mark["batch"] = now

            def on_train_batch_end(self, batch, logs=None):
                now = times.clock()
                times.epochs[-1]["steps"].append(now - times.mark["step"])
                times.mark["batch_end"] = now

            def on_test_begin(self, logs=None):
                times.mark["test"] = times.clock()

        class Last(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                times.mark["step"] = now = times.clock()
                times.epochs[-1]["callbacks"] += now - times.mark["batch"]

            def on_train_batch_end(self, batch, logs=None):
                times.mark["end"] = now = times.clock()
                times.epochs[-1]["callbacks"] += now - times.mark["batch_end"]

            def on_test_end(self, logs=None):
                times.mark["test_end"] = now = times.clock()
                times.epochs[-1]["eval"] += now - times.mark["test"]

            def on_epoch_end(self, epoch, logs=None):
                now, current = times.clock(), times.epochs[-1]
                current["epoch_end"] = now - max(times.mark.get("test_end") or 0.0, times.mark["end"])
                current["wall"] = now - times.mark["epoch"]
                times.mark["test_end"] = None

        return First(), Last()


def _timed(phases, name, function):
    """``function`` adding the seconds of each of its calls to ``phases[name]``."""
    import functools
    import time

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - began
    return wrapper


#: The phases of ``keras_convnets.training.loop._run`` that :func:`instrument_loop` times, in the run's order
#: (``_claimed_out_dir`` is a context manager, its few file writes fall outside every phase).
LOOP_PHASES = ("_context", "_announce", "_test_data", "_build_and_compile", "_callbacks", "_restore", "_fit_phases",
               "_history_rows", "_export", "_record_complete")


def instrument_loop(loop, phases, settings=None):
    """Wraps the phases of ``keras_convnets.training.loop`` (its module object, :data:`LOOP_PHASES`) so that each
    one's seconds are added to ``phases`` (name without the underscore -> seconds), and makes its callbacks phase
    add a :class:`FitTimes`' two callbacks around the run's own ones. Returns the :class:`FitTimes`, a dict that
    keeps what the run built (``"context"``: the run's context, ``"model"``: the compiled model, ``"train_data"``:
    the last training pipeline ``fit`` was given, a stream of the run's epochs of ``context.steps`` batches each)
    and a function that undoes the wrapping. Instrumentation only: what the run computes is unchanged, unless
    ``settings`` (``RuntimeSettings`` fields, e.g. ``{"data_threads": 2}``) replaces some of the runtime settings
    the run chose (an experiment's variant)."""
    import dataclasses
    times, originals, kept = FitTimes(), {}, {}

    def with_timers(ctx, written):
        result = originals["_callbacks"](ctx, written)
        first, last = times.callbacks()
        return result._replace(all=[first] + list(result.all) + [last])

    def with_settings(run_plan, strategy):
        ctx = originals["_context"](run_plan, strategy)
        if settings:
            ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, **settings))
        kept["context"] = ctx
        return ctx

    def keep_model(ctx):
        model, compile_for = originals["_build_and_compile"](ctx)
        kept["model"] = model
        return model, compile_for

    def keep_train_data(ctx, first_epoch, epochs):  # built inside _fit_phases: kept, not timed apart
        kept["train_data"] = originals["_training_data"](ctx, first_epoch, epochs)
        return kept["train_data"]

    for name in LOOP_PHASES + ("_training_data",):
        originals[name] = getattr(loop, name)
    replaced = dict(originals, _context=with_settings, _callbacks=with_timers, _build_and_compile=keep_model)
    for name in LOOP_PHASES:
        setattr(loop, name, _timed(phases, name.lstrip("_"), replaced[name]))
    loop._training_data = keep_train_data

    def undo():
        for name, function in originals.items():
            setattr(loop, name, function)
    return times, kept, undo
