"""The callbacks of a training run besides the backup and the EMA: the per-epoch history (written through the run
directory, :class:`keras_convnets.run_directory.RunDirectory`), the divergence guard, the learning rate read back,
and the learning curves as a figure.

The callback classes subclass Keras' ``Callback``, so they are made when Keras is imported (:func:`epoch_history`,
:func:`divergence_guard`), never when this module is.
"""

import logging
import math
import time

import numpy as np

logger = logging.getLogger(__name__)


def current_lr(optimizer) -> float:
    """The optimizer's learning rate now (its schedule's value at its iterations; NaN when it cannot be read)."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    try:
        rate = optimizer.learning_rate
        if callable(rate) and not hasattr(rate, "numpy"):  # tf-keras returns the schedule itself
            rate = rate(optimizer.iterations)
        return float(np.asarray(rate))
    except (TypeError, ValueError):
        return float("nan")


def epoch_history(directory):
    """A callback that writes ``history.json`` and ``history.csv`` of the run directory ``directory`` after every
    epoch. On the first epoch of a (resumed) run it drops the rows of epochs that are about to be trained again, so
    every epoch appears exactly once."""
    from keras_convnets.models.backend import keras

    class EpochHistory(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rows = None
            self.started = None

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()
            if self.rows is None:
                self.rows = [row for row in directory.history() if row["epoch"] <= epoch]
                if epoch:
                    logger.info("Resuming at epoch %d from %s", epoch + 1, directory.backup)

        def on_epoch_end(self, epoch, logs=None):
            self.rows.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
                              "lr": current_lr(self.model.optimizer), "seconds": time.time() - self.started})
            directory.write_history(self.rows)

    return EpochHistory()


def divergence_guard():
    """A callback that stops training at the first batch whose loss is NaN or infinite and remembers the epoch
    (1-based) in ``diverged_at``."""
    from keras_convnets.models.backend import keras

    class DivergenceGuard(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.diverged_at = None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.diverged_at = self.epoch
                self.model.stop_training = True

    return DivergenceGuard()


def plot_history(rows, path):
    """Loss and accuracy per epoch (train and test) as a PNG. A bare ``Figure`` (no pyplot): the caller's
    matplotlib backend is left alone, so a notebook that trains still shows its own figures."""
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in rows]
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), (f"val_{metric}", "test")):
            if any(key in row for row in rows):
                ax.plot(epochs, [row.get(key, float("nan")) for row in rows], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
