"""Training a registered model on a tfds dataset or a folder of images with ``model.fit`` under a ``tf.distribute``
strategy.

``train("resnet20", epochs=3, out="runs/r20")`` makes a :class:`~keras_convnets.training.train_config.TrainConfig`,
plans it (:func:`keras_convnets.training.run_plan.plan`: every argument checked, the paper's recipe for the model's
family resolved, :mod:`keras_convnets.training.recipes`) and runs the plan here, in named phases (:func:`_run`):
it builds the model inside the strategy's scope behind its uint8 preprocessing, fits it, evaluates it on the test
split, exports ``OUT/saved_model`` and returns a :class:`TrainResult`.
``dataset`` is any tfds image-classification name or a folder of class folders
(:func:`keras_convnets.training.datasets.describe`; the CIFAR names keep their own pipeline). ``weights="imagenet"``
or a weights file fine-tunes the model's pretrained backbone under a new classifier with the fine-tuning recipe, after
``freeze_backbone`` epochs on the head alone (:mod:`keras_convnets.training.finetune`).

``OUT`` holds: ``run.json`` (the run's arguments: a different run is refused), ``history.json`` / ``history.csv``
(one row per epoch, exactly once even across resumptions), ``curves.png``, ``logs/`` (TensorBoard), ``backup/``
(:mod:`keras_convnets.training.checkpoint`: a killed run re-run with the same arguments resumes after its last
finished epoch; deleted once the export has landed), ``saved_model/`` and, while a run is alive, ``.lock`` (one run per
``OUT``). ``run.json``'s ``status`` is ``running``, ``complete`` (a re-run says so instead of training again unless
``force``) or ``diverged`` (the loss became NaN; a re-run with other arguments may start over in the same ``OUT``).
The README's "What survives what" lists the faults each of these survives.
"""

import contextlib
import csv
import dataclasses
import functools
import importlib.util
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, NamedTuple, Optional

import numpy as np

from keras_convnets import publish
from keras_convnets.training import (
    augment,
    checkpoint,
    data,
    datasets,
    distribute,
    ema,
    export,
    finetune,
    lock,
    performance,
    recipes,
)

# plan() and the run directory's checks, under the names users call them by here (loop.plan, loop.PRECISIONS, ...)
from keras_convnets.training.run_plan import (  # noqa: F401
    PRECISIONS,
    RUN_FILE,
    RunCompleteError,
    RunMismatchError,
    RunPlan,
    check_out_dir,
    plan,
    planned_steps,
    read_json,
    read_run_record,
)

HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
CURVES_PNG = "curves.png"


class ModelOptionError(ValueError):
    """The model's factory rejected an option (``model_kwargs``)."""


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class DataError(ValueError):
    """The dataset's files could not be read while training (corrupt or missing tfrecords)."""


@dataclasses.dataclass
class TrainResult:
    """What a run leaves: per-epoch ``history`` (metric name → list), the SavedModel's path, the test accuracy."""

    out: str
    export_path: str
    test_accuracy: float
    test_loss: float
    history: Dict[str, List[float]]
    arguments: Dict[str, Any]


def _write_json(path, obj):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def _history_callback_class():
    from keras_convnets.models.backend import keras

    class EpochHistory(keras.callbacks.Callback):
        """Writes ``history.json`` and ``history.csv`` after every epoch. On the first epoch of a (resumed) run it
        drops the rows of epochs that are about to be trained again, so every epoch appears exactly once."""

        def __init__(self, out):
            super().__init__()
            self.out = out
            self.rows = None
            self.started = None

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()
            if self.rows is None:
                path = os.path.join(self.out, HISTORY_JSON)
                rows = read_json(path) if os.path.exists(path) else []
                self.rows = [row for row in rows if row["epoch"] <= epoch]
                if epoch:
                    print(f"Resuming at epoch {epoch + 1} from {os.path.join(self.out, 'backup')}", flush=True)

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
                   "lr": _current_lr(self.model.optimizer), "seconds": time.time() - self.started}
            self.rows.append(row)
            _write_json(os.path.join(self.out, HISTORY_JSON), self.rows)
            columns = list(dict.fromkeys(key for r in self.rows for key in r))
            tmp = os.path.join(self.out, HISTORY_CSV + ".tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, columns)
                writer.writeheader()
                writer.writerows(self.rows)
            os.replace(tmp, os.path.join(self.out, HISTORY_CSV))

    return EpochHistory


def _current_lr(optimizer):
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    try:
        rate = optimizer.learning_rate
        if callable(rate) and not hasattr(rate, "numpy"):  # tf-keras returns the schedule itself
            rate = rate(optimizer.iterations)
        return float(np.asarray(rate))
    except (TypeError, ValueError):
        return float("nan")


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


def build_model(run_plan: RunPlan, image_shape, num_classes, policy=None):
    """The registry's model for the run (in the current strategy scope) behind its uint8 preprocessing; with
    ``weights``, the pretrained backbone under a new classifier (:func:`keras_convnets.training.finetune.build`).
    ``policy``: the Keras dtype policy (default: the plan's precision when it is a Keras mixed policy, else float32;
    ``bf16`` on a CPU is float32 layers under the oneDNN rewrite)."""
    kwargs = dict(run_plan.model_kwargs, input_shape=tuple(image_shape), weight_decay=run_plan.recipe.weight_decay)
    if policy is None:
        policy = run_plan.config.precision if run_plan.config.precision.startswith("mixed_") else "float32"
    if policy != "float32":
        kwargs["dtype"] = policy
    if run_plan.config.weights is None:
        model = run_plan.info.build(classes=num_classes, **kwargs)
    else:
        model = finetune.build(run_plan.info, run_plan.config.weights, num_classes,
                               reverse_channels=run_plan.spec.statistics.reverse_channels, **kwargs)
    return data.preprocessing_model(model, run_plan.spec, image_shape,
                                    name=f"{run_plan.info.name}_{os.path.basename(run_plan.spec.name)}")


def _divergence_guard_class():
    from keras_convnets.models.backend import keras

    class DivergenceGuard(keras.callbacks.Callback):
        """Stops training at the first batch whose loss is NaN or infinite and remembers the epoch (1-based)."""

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

    return DivergenceGuard


def _remove_backup(out):
    shutil.rmtree(os.path.join(out, "backup"), ignore_errors=True)


def _start_record(out, run_plan):
    """Checks ``out`` again under the lock (another process may have finished this run meanwhile) and marks the run
    running. A diverged run's leftovers are cleared, so the new run starts from epoch 1."""
    check_out_dir(out, run_plan.arguments, run_plan.config.force)
    record = read_run_record(out)
    if record is not None and (record.get("status") == "diverged" or record.get("arguments") != json.loads(
            json.dumps(run_plan.arguments))):
        _remove_backup(out)
        for name in (HISTORY_JSON, HISTORY_CSV, CURVES_PNG):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(out, name))
    _write_json(os.path.join(out, RUN_FILE), {"status": "running", "arguments": run_plan.arguments,
                                              "data": run_plan.spec.summary()})


def _fit(model, train_ds, test_ds, callbacks, epochs, verbose, steps, initial_epoch=0, evaluate=True,
         bf16=False):
    """``model.fit`` of ``train_ds`` (the run's stream of epochs, ``steps`` batches each) from ``initial_epoch``
    (then the test ``[loss, accuracy]`` if ``evaluate``) with unreadable dataset files turned into a one-line
    :class:`DataError`. The test figures are the last epoch's validation, which ``fit`` computed on the
    same data with the weights it ends with (the EMA's too: its callback leaves them in); ``evaluate`` runs again
    only where that validation is missing (a resumed run with no epoch left) or was not the float32 model's:
    ``bf16``, where ``fit`` (its train steps and per-epoch validation) runs under the oneDNN bf16 rewrite and the
    reported accuracy must be the float32 model's, which the export serves."""
    import tensorflow as tf

    try:
        with performance.onednn_bf16() if bf16 else contextlib.nullcontext():
            history = model.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                                validation_data=test_ds, callbacks=callbacks, verbose=verbose,
                                shuffle=False)  # the pipeline shuffles
        if not evaluate:
            return None
        logs = history.history
        if not bf16 and logs.get("val_loss") and logs.get("val_accuracy"):
            return [float(logs["val_loss"][-1]), float(logs["val_accuracy"][-1])]
        return [float(v) for v in model.evaluate(test_ds, verbose=0)]
    except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
        reason = " ".join(str(error).split())[:200]
        raise DataError(f"the dataset's files cannot be read ({reason}); they are corrupt or missing: prepare the "
                        "dataset again or point --data-dir at a good copy") from None


def run(run_plan: RunPlan, verbose="auto") -> TrainResult:
    """Trains, evaluates and exports a planned run.

    The chief holds ``OUT/.lock`` for the whole run (:mod:`keras_convnets.training.lock`). A loss that becomes NaN
    stops training with a :class:`DivergedError` and ``run.json`` status ``diverged``; unreadable dataset files
    raise a :class:`DataError`. The backup is deleted only after the export has landed and ``run.json`` says
    ``complete``, so a run killed during its export resumes with no epoch to train.

    Under a multi-worker strategy every worker calls this with the same plan; only the chief writes ``out``
    (``run.json``, history, curves, TensorBoard logs, the export). The other workers write their history and
    export (which they must take part in: reading synchronized variables is a collective) to a temporary
    directory that is deleted at the end, and their ``BackupAndRestore`` state under ``out/backup``, where
    tf-keras keeps the chief's checkpoint in ``backup/chief`` and each other worker's in its own
    ``backup/workertemp_<index>``; a restarted worker restores the chief's checkpoint, so all resume alike.
    """
    # First: a multi-worker strategy configures collective ops, which must happen before TF runs anything.
    return _run(run_plan, distribute.get_strategy(run_plan.config.strategy), verbose)


def _has_backup(out):
    backup = os.path.join(out, "backup")
    return os.path.isdir(backup) and any(not name.startswith(".") for name in os.listdir(backup))


def _train_head(model, strategy, compile_for, recipe, epochs, fit):
    """The frozen-backbone phase: the backbone frozen (BatchNorm in inference mode), the head trained with
    :data:`~keras_convnets.training.recipes.FINE_TUNE_HEAD`'s rate by ``fit``; then every layer unfrozen and the
    model compiled again with ``recipe``. Not backed up: a run killed during it trains it again."""
    head_recipe = dataclasses.replace(recipes.FINE_TUNE_HEAD, batch_size=recipe.batch_size,
                                      lr=recipes.FINE_TUNE_HEAD.lr * recipe.lr / recipes.FINE_TUNE.lr)
    print(f"Frozen backbone: training the new head alone at lr {head_recipe.lr:g} first (BatchNorm in inference "
          "mode), then every layer", flush=True)
    with strategy.scope():
        finetune.set_backbone_trainable(model, False)
        compile_for(head_recipe, epochs)
    fit()
    with strategy.scope():
        finetune.set_backbone_trainable(model, True)
        compile_for(recipe, recipe.epochs)


def _make_out_dir(out):
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        raise RunMismatchError(f"output directory {out} cannot be created ({error.strerror}); choose another "
                               "--out") from None


@dataclasses.dataclass(frozen=True)
class _Context:
    """What every phase of a run reads: the plan, the strategy it runs under, the runtime settings chosen for this
    machine (passed on to the pipelines and ``compile``, never kept in a global), the recipe scaled to the
    replicas, and whether this process is the chief (the one that writes ``OUT``)."""

    plan: RunPlan
    strategy: Any
    settings: performance.RuntimeSettings
    recipe: recipes.Recipe
    chief: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def global_batch(self) -> int:
        return self.plan.global_batch_size(self.replicas)

    @property
    def precision(self) -> performance.Precision:
        return self.settings.precision

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch: the training images over the global batch, capped by ``steps_per_epoch``
        (what the learning-rate schedule, the EMA and ``fit`` all count)."""
        return planned_steps(self.plan.spec.train.count, self.global_batch, self.plan.config.steps_per_epoch)

    @property
    def epochs(self) -> int:
        """``fit``'s epochs: the frozen-backbone ones, then the recipe's."""
        return self.plan.freeze_epochs + self.recipe.epochs


def _context(run_plan: RunPlan, strategy) -> _Context:
    """Phase 1: the runtime settings for this machine and the plan's flags, and the recipe for the replicas."""
    config = run_plan.config
    settings = performance.choose_settings(
        performance.detect_machine(strategy), steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile, precision=config.precision)
    return _Context(run_plan, strategy, settings, run_plan.scaled_recipe(strategy.num_replicas_in_sync),
                    distribute.is_chief(strategy))


def _announce(ctx: _Context) -> None:
    """Phase 2: the run's first lines: what it chose on this machine and why, what the data is (splits, skipped
    files, the normalization pretrained weights need), how it is distributed, and the recipe when not the paper's."""
    run_plan, recipe, spec = ctx.plan, ctx.recipe, ctx.plan.spec
    print(ctx.settings.describe(), flush=True)
    if not (ctx.settings.machine.onednn or ctx.settings.machine.accelerators):
        print(performance.kernels_note(), flush=True)
    print(spec.split_note, flush=True)
    if run_plan.config.weights is not None:  # a BGR file's first conv is reversed
        print(f"Input normalization: {spec.statistics.source}", flush=True)
    if spec.skipped_report:
        print(spec.skipped_report, flush=True)
    print(f"Strategy: {distribute.strategy_label(ctx.strategy)} ({run_plan.config.strategy}), {ctx.replicas} "
          f"replica(s), global batch {ctx.global_batch} = {recipe.batch_size} per replica x {ctx.replicas}, lr "
          f"{recipe.lr:g}" + (" (scaled linearly from the paper's batch)" if run_plan.config.scale_lr else ""),
          flush=True)
    regularization = run_plan.regularization
    if run_plan.config.recipe != "paper" or regularization.active or recipe.warmup_epochs:
        options = ", ".join(f"{k} {v}" for k, v in regularization.to_json().items()) or "no regularization options"
        print(f"Recipe: {run_plan.config.recipe} ({recipe.source}), {recipe.schedule} schedule, warm-up "
              f"{recipe.warmup_epochs:g} epochs; {options}", flush=True)


def _training_data(ctx: _Context, first_epoch: int, epochs: int):
    """The training pipeline of ``fit``'s epochs ``first_epoch`` .. ``epochs - 1`` at the global batch, each epoch
    drawn from ``(seed, epoch)`` alone (:func:`keras_convnets.training.datasets.train_dataset`), with the
    regularization's per-image and per-batch ops, ``steps`` batches an epoch, sharded by data across workers."""
    run_plan, spec, regularization = ctx.plan, ctx.plan.spec, ctx.plan.regularization
    fill = tuple(int(round(255 * m)) for m in spec.statistics.mean)  # erased pixels: 0 once the model normalizes
    train_ds = datasets.train_dataset(spec, ctx.global_batch, seed=run_plan.config.seed, epochs=epochs,
                                      first_epoch=first_epoch, steps_per_epoch=ctx.steps, settings=ctx.settings,
                                      per_image=augment.per_image_op(regularization, fill),
                                      per_batch=augment.per_batch_op(regularization, spec.num_classes))
    return distribute.shard_by_data(train_ds) if distribute.is_multi_worker(ctx.strategy) else train_ds


def _test_data(ctx: _Context):
    """The test pipeline at the global batch (one-hot labels when training takes soft ones), sharded by data across
    workers."""
    test_ds = datasets.eval_dataset(ctx.plan.spec, ctx.global_batch, settings=ctx.settings)
    if ctx.plan.regularization.soft_labels:  # the loss takes one-hot labels
        test_ds = augment.soft_labels(test_ds, ctx.plan.spec.num_classes)
    return distribute.shard_by_data(test_ds) if distribute.is_multi_worker(ctx.strategy) else test_ds


def _compile(model, ctx: _Context, phase_recipe: recipes.Recipe, epochs: int) -> None:
    """Compiles ``model`` for ``epochs`` of ``phase_recipe``: its optimizer and schedule, the loss the labels need
    (soft labels: categorical with the label smoothing), accuracy, and the runtime settings' compile options (``fit``
    gets ``steps_per_epoch`` on the run's stream of epochs, so whole executions must fit an epoch)."""
    from keras_convnets.models.backend import keras

    optimizer = recipes.optimizer(phase_recipe, ctx.steps * epochs)
    if ctx.precision.policy == "mixed_float16":
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    regularization = ctx.plan.regularization
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=regularization.label_smoothing) \
        if regularization.soft_labels else keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                  **performance.compile_options(ctx.plan.info, ctx.steps, settings=ctx.settings))


def _build_and_compile(ctx: _Context):
    """Phase 3: the seeded model built in the strategy's scope and compiled for the recipe; returns it and
    ``compile_for(recipe, epochs)``, which the frozen-backbone phase compiles it again with."""
    from keras_convnets.models.backend import keras

    keras.utils.set_random_seed(ctx.plan.config.seed)
    with ctx.strategy.scope():
        try:
            model = build_model(ctx.plan, ctx.plan.spec.image_shape, ctx.plan.spec.num_classes,
                                policy=ctx.precision.policy)
        except (TypeError, ValueError) as error:
            raise ModelOptionError(f"{ctx.plan.info.name}: {error}") from None
        compile_for = functools.partial(_compile, model, ctx)
        compile_for(ctx.recipe, ctx.recipe.epochs)
    return model, compile_for


@contextlib.contextmanager
def _claimed_out_dir(ctx: _Context):
    """Phase 5: the directory this process writes, for the rest of the run. The chief creates ``OUT`` (only now
    that the model is built: OUT is touched only by a run that can start), holds its lock, marks the run running
    and finishes an interrupted export; another worker writes to a temporary directory of its own (the standard
    pattern), deleted at the end."""
    out = ctx.plan.out
    if ctx.chief:
        _make_out_dir(out)
        with lock.held(out):
            _start_record(out, ctx.plan)
            publish.recover(os.path.join(out, "saved_model"))
            yield out
        return
    os.makedirs(out, exist_ok=True)
    write_dir = tempfile.mkdtemp(prefix=f"keras_convnets-{distribute.task_name()}-")
    try:
        yield write_dir
    finally:
        shutil.rmtree(write_dir, ignore_errors=True)


class _Callbacks(NamedTuple):
    """A run's callbacks in ``fit``'s order, and the two a phase reads after ``fit``."""

    all: list
    guard: Any
    averaging: Any


def _callbacks(ctx: _Context, write_dir: str) -> _Callbacks:
    """Phase 6: the callbacks: the backup (with the EMA's shadow weights
    in each checkpoint), the per-epoch history (after the backup: see its docstring), the divergence guard, the
    EMA, and TensorBoard on the chief when it is installed."""
    from keras_convnets.models.backend import keras
    out, regularization = ctx.plan.out, ctx.plan.regularization
    guard = _divergence_guard_class()()
    averaging = ema.callback(regularization.ema, regularization.ema_warmup_steps) if regularization.ema else None
    callbacks = [checkpoint.backup(os.path.join(out, "backup"), extras=[averaging] if averaging else []),
                 _history_callback_class()(write_dir), guard] + ([averaging] if averaging else [])
    if ctx.chief and importlib.util.find_spec("tensorboard") is not None:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False, profile_batch=0))
    elif ctx.chief:
        print("TensorBoard is not installed: no logs/ written (pip install tensorboard)", flush=True)
    return _Callbacks(callbacks, guard, averaging)


def _restore(ctx: _Context, model, callbacks: _Callbacks) -> Optional[int]:
    """Phase 7: the newest checkpoint that loads whole, loaded before ``fit`` (the EMA's shadow with it); the
    epochs it finished (0: none), so the input pipeline starts where the uninterrupted run was. None under tf-keras,
    whose own ``BackupAndRestore`` restores at the start of ``fit``."""
    from keras_convnets.models.backend import KERAS_3

    if not KERAS_3:
        return None
    extras = [callbacks.averaging] if callbacks.averaging else []
    return checkpoint.restore(model, os.path.join(ctx.plan.out, "backup"), extras)


def _fit_phases(ctx: _Context, model, compile_for, restored: Optional[int], callbacks: _Callbacks, test_ds, verbose):
    """Phase 8: the frozen-backbone epochs (unless the run restored past them), then the recipe's epochs from
    where the run restored; the test ``[loss, accuracy]``, or None when the loss diverged first."""
    bf16 = ctx.precision.onednn_bf16
    head_epochs = ctx.plan.freeze_epochs
    resumed = _has_backup(ctx.plan.out) if restored is None else restored > 0
    if head_epochs and not resumed:
        # not the backup (the head phase is not backed up), nor the EMA (it starts with every layer)
        head_callbacks = [c for c in callbacks.all[1:] if c is not callbacks.averaging]
        _train_head(model, ctx.strategy, compile_for, ctx.recipe, head_epochs, lambda: _fit(
            model, _training_data(ctx, 0, head_epochs), test_ds, head_callbacks, head_epochs, verbose, ctx.steps,
            evaluate=False, bf16=bf16))
    if callbacks.guard.diverged_at is not None:
        return None
    first = max(head_epochs, restored or 0)
    return _fit(model, _training_data(ctx, first, ctx.epochs), test_ds, callbacks.all, ctx.epochs, verbose,
                ctx.steps, initial_epoch=first, bf16=bf16)


def _history_rows(ctx: _Context, write_dir: str) -> List[Dict[str, Any]]:
    """Phase 8: the epochs' rows as written, plotted on the chief as ``curves.png``."""
    history_path = os.path.join(write_dir, HISTORY_JSON)
    rows = read_json(history_path) if os.path.exists(history_path) else []
    if ctx.chief:
        plot_history(rows, os.path.join(ctx.plan.out, CURVES_PNG))
    return rows


def _stop_if_diverged(ctx: _Context, guard) -> None:
    """Phase 9: a :class:`DivergedError` if the loss became NaN, after the chief recorded it and dropped the
    backup (its weights belong to a learning rate that diverges)."""
    if guard.diverged_at is None:
        return
    message = f"loss became NaN at epoch {guard.diverged_at}; lower --lr (it was {ctx.recipe.lr:g})"
    if ctx.chief:
        _remove_backup(ctx.plan.out)
        _write_json(os.path.join(ctx.plan.out, RUN_FILE), {"status": "diverged", "arguments": ctx.plan.arguments,
                                                           "diverged_at_epoch": guard.diverged_at, "error": message})
    raise DivergedError(message)


def _export(ctx: _Context, model, test_ds, write_dir: str) -> str:
    """Phase 11: the SavedModel, checked on 64 test images; every worker takes part (reading synchronized
    variables is a collective), the chief's lands in ``OUT/saved_model``, which is the path returned."""
    spec = ctx.plan.spec
    check_images = next(iter(test_ds))[0].numpy()[:64].astype(np.uint8)
    path = export.export_saved_model(model, os.path.join(write_dir, "saved_model"), list(spec.class_names),
                                     check_images, crop_fraction=spec.crop_fraction)
    distribute.debug_dump_weights(model)
    return path if ctx.chief else os.path.join(ctx.plan.out, "saved_model")


def _record_complete(ctx: _Context, scores, export_path: str) -> None:
    """Phase 11 (chief): ``run.json`` complete, then the backup deleted: a run killed before this resumes with no
    epoch left to train."""
    run_plan = ctx.plan
    _write_json(os.path.join(run_plan.out, RUN_FILE), {
        "status": "complete", "arguments": run_plan.arguments, "data": run_plan.spec.summary(),
        "test_accuracy": scores[1], "test_loss": scores[0], "export_path": export_path,
        "class_names": list(run_plan.spec.class_names), "strategy": distribute.strategy_label(ctx.strategy),
        "replicas": ctx.replicas, "global_batch_size": ctx.global_batch, "lr": ctx.recipe.lr,
        "compute_precision": ctx.precision.label})
    _remove_backup(run_plan.out)


def _run(run_plan: RunPlan, strategy, verbose) -> TrainResult:
    """A planned run, phase by phase (each function's docstring says what it does and why in that order)."""
    ctx = _context(run_plan, strategy)
    _announce(ctx)
    test_ds = _test_data(ctx)
    model, compile_for = _build_and_compile(ctx)
    with _claimed_out_dir(ctx) as write_dir:
        callbacks = _callbacks(ctx, write_dir)
        restored = _restore(ctx, model, callbacks)
        scores = _fit_phases(ctx, model, compile_for, restored, callbacks, test_ds, verbose)
        rows = _history_rows(ctx, write_dir)
        _stop_if_diverged(ctx, callbacks.guard)
        export_path = _export(ctx, model, test_ds, write_dir)
        if ctx.chief:
            _record_complete(ctx, scores, export_path)
    history = {key: [row.get(key) for row in rows] for key in dict.fromkeys(k for row in rows for k in row)}
    return TrainResult(run_plan.out, export_path, scores[1], scores[0], history, run_plan.arguments)


def train(model, dataset=None, *, verbose="auto", **options) -> TrainResult:
    """Trains the registered ``model`` on ``dataset`` (default ``"cifar10"``) with its paper's recipe, evaluates it
    and exports it: ``run(plan(model, dataset, **options))``.

    ``options`` are the fields of :class:`~keras_convnets.training.train_config.TrainConfig`, documented there
    (``epochs``, ``batch_size``, ``lr``, ``schedule``, ``weights``, ``freeze_backbone``, ``recipe``,
    ``regularization``, ``precision``, ``strategy``, ``out``, ``force``, ...); ``model`` may be a ``TrainConfig``
    itself. An unknown option is a TypeError naming the closest ones. ``verbose``: ``model.fit``'s.
    """
    return run(plan(model, dataset, **options), verbose=verbose)
