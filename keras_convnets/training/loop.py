"""Training a registered model on a tfds dataset or a folder of images with ``model.fit`` under a ``tf.distribute``
strategy (Keras on TensorFlow) or ``keras.distribution.DataParallel`` (Keras on JAX,
:mod:`keras_convnets.runtime.distribute`).

``train("resnet20", epochs=3, out="runs/r20")`` makes a :class:`~keras_convnets.training.config.TrainConfig`,
plans it (:func:`keras_convnets.training.plan.plan`: every argument checked, the paper's recipe for the model's
family resolved, :mod:`keras_convnets.training.recipes`) and runs the plan here, in named phases (:func:`_run`):
it builds the model inside the strategy's scope behind its uint8 preprocessing, restores the newest whole
checkpoint, fits it from there, exports ``OUT/saved_model`` and returns a :class:`TrainResult`. ``dataset`` is any
tfds image-classification name or a folder of class folders (:func:`keras_convnets.data.catalog.describe`; the CIFAR
names keep their own pipeline). ``weights="imagenet"`` or a weights file fine-tunes the model's pretrained backbone
under a new classifier with the fine-tuning recipe, after ``freeze_backbone`` epochs on the head alone
(:mod:`keras_convnets.training.finetune`).

``OUT`` is a :class:`~keras_convnets.run_directory.RunDirectory` (what it holds, and the faults each part survives:
README's "What survives what"). ``run.json``'s ``status`` is ``running``, ``complete`` (a re-run says so instead of
training again unless ``force``) or ``diverged`` (the loss became NaN; a re-run with other arguments may start over
in the same ``OUT``). A run reports through the ``keras_convnets`` logger (the command line prints its records).
"""

import contextlib
import dataclasses
import functools
import importlib.util
import logging
import os
import shutil
import tempfile
from typing import Any, Dict, List, NamedTuple, Optional

import numpy as np

from keras_convnets import publish
from keras_convnets.data import pipelines, preprocessing
from keras_convnets.run_directory import RunDirectory
from keras_convnets.runtime import distribute, machine, precision, startup
from keras_convnets.runtime import settings as runtime_settings
from keras_convnets.runtime.precision import Precision
from keras_convnets.serving import saved_model
from keras_convnets.training import callbacks as run_callbacks
from keras_convnets.training import checkpoint, ema, finetune, recipes
from keras_convnets.training.plan import RunPlan, Schedule, plan

logger = logging.getLogger(__name__)


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


def build_model(run_plan: RunPlan, image_shape, num_classes, policy: str):
    """The registry's model for the run (in the current strategy scope) behind its uint8 preprocessing; with
    pretrained weights, the backbone under a new classifier (:func:`keras_convnets.training.finetune.build`).
    ``policy``: the Keras dtype policy of the run's resolved precision
    (:attr:`keras_convnets.runtime.precision.Precision.policy`; ``bf16`` on a CPU is float32 layers under the
    oneDNN rewrite)."""
    kwargs = dict(run_plan.model_kwargs, input_shape=tuple(image_shape), weight_decay=run_plan.recipe.weight_decay)
    if policy != "float32":
        kwargs["dtype"] = policy
    if not run_plan.fine_tune:
        model = run_plan.info.build(classes=num_classes, **kwargs)
    else:
        model = finetune.build(run_plan.info, run_plan.config.weights, num_classes,
                               reverse_channels=run_plan.spec.statistics.reverse_channels, **kwargs)
    return preprocessing.preprocessing_model(model, run_plan.spec.statistics, image_shape,
                                             name=f"{run_plan.info.name}_{os.path.basename(run_plan.spec.name)}")


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
        with precision.onednn_bf16() if bf16 else contextlib.nullcontext():
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

    The chief holds ``OUT/.lock`` for the whole run. A loss that becomes NaN stops training with a
    :class:`DivergedError` and ``run.json`` status ``diverged``; unreadable dataset files raise a
    :class:`DataError`. The backup is deleted only after the export has landed and ``run.json`` says ``complete``,
    so a run killed during its export resumes with no epoch to train.

    Under a multi-worker strategy every worker calls this with the same plan; only the chief writes ``out``
    (``run.json``, history, curves, TensorBoard logs, the export). The other workers write their history and
    export (which they must take part in: reading synchronized variables is a collective) to a temporary
    directory that is deleted at the end, and their ``BackupAndRestore`` state under ``out/backup``, where
    tf-keras keeps the chief's checkpoint in ``backup/chief`` and each other worker's in its own
    ``backup/workertemp_<index>``; a restarted worker restores the chief's checkpoint, so all resume alike.
    """
    # First: a multi-worker strategy configures collective ops, which must happen before TF runs anything.
    return _run(run_plan, distribute.get_strategy(run_plan.config.strategy), verbose)


def _train_head(model, strategy, compile_for, recipe, epochs, fit):
    """The frozen-backbone phase: the backbone frozen (BatchNorm in inference mode), the head trained with
    :data:`~keras_convnets.training.recipes.FINE_TUNE_HEAD`'s rate by ``fit``; then every layer unfrozen and the
    model compiled again with ``recipe``. Not backed up: a run killed during it trains it again."""
    head_recipe = dataclasses.replace(recipes.FINE_TUNE_HEAD, batch_size=recipe.batch_size,
                                      lr=recipes.FINE_TUNE_HEAD.lr * recipe.lr / recipes.FINE_TUNE.lr)
    logger.info("Frozen backbone: training the new head alone at lr %g first (BatchNorm in inference mode), then "
                "every layer", head_recipe.lr)
    with strategy.scope():
        finetune.set_backbone_trainable(model, False)
        compile_for(head_recipe, epochs)
    fit()
    with strategy.scope():
        finetune.set_backbone_trainable(model, True)
        compile_for(recipe, recipe.epochs)


@dataclasses.dataclass(frozen=True)
class _Context:
    """What every phase of a run reads, each worked out once: the plan, the strategy it runs under, the runtime
    settings chosen for this machine (precision included; passed on to the model, the pipelines and ``compile``,
    never kept in a global), the recipe scaled to the replicas, the step counts from the global batch
    (:class:`~keras_convnets.training.plan.Schedule`: the learning rate's, the EMA's and ``fit``'s), and whether
    this process is the chief (the one that writes ``OUT``)."""

    plan: RunPlan
    strategy: Any
    settings: runtime_settings.RuntimeSettings
    recipe: recipes.Recipe
    schedule: Schedule
    chief: bool
    #: Every batch the same size (JAX over several devices: ``distribute.needs_whole_batches``): training drops each
    #: epoch's last partial batch, evaluation pads its last one with rows of weight 0.
    whole_batches: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def global_batch(self) -> int:
        return self.plan.global_batch_size(self.replicas)

    @property
    def precision(self) -> Precision:
        return self.settings.precision

    @property
    def steps(self) -> int:
        return self.schedule.steps_per_epoch

    @property
    def epochs(self) -> int:
        """``fit``'s epochs: the frozen-backbone ones, then the recipe's."""
        return self.plan.freeze_epochs + self.recipe.epochs


def _context(run_plan: RunPlan, strategy) -> _Context:
    """Phase 1: what the run works out once it knows its replicas: the runtime settings for this machine and the
    plan's flags (the precision resolved), the recipe and the step counts for the replicas."""
    config, replicas = run_plan.config, strategy.num_replicas_in_sync
    settings = runtime_settings.choose_settings(
        machine.detect_machine(strategy), steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile, precision=config.precision)
    whole_batches = distribute.needs_whole_batches(strategy)
    return _Context(run_plan, strategy, settings, run_plan.scaled_recipe(replicas),
                    run_plan.schedule(replicas, whole_batches=whole_batches), distribute.is_chief(strategy),
                    whole_batches)


def _announce(ctx: _Context) -> None:
    """Phase 2: the run's first lines: what it chose on this machine and why, what the data is (splits, skipped
    files, the normalization pretrained weights need), how it is distributed, and the recipe when not the paper's."""
    run_plan, recipe, spec = ctx.plan, ctx.recipe, ctx.plan.spec
    logger.info("%s", ctx.settings.describe())
    host = ctx.settings.machine
    if host.backend == "tensorflow" and not (host.onednn or host.accelerators):
        logger.info("%s", startup.kernels_note())
    logger.info("%s", spec.split_note)
    if run_plan.fine_tune:  # a BGR file's first conv is reversed
        logger.info("Input normalization: %s", spec.statistics.source)
    if spec.skipped_report:
        logger.info("%s", spec.skipped_report)
    logger.info("Strategy: %s (%s), %d replica(s), global batch %d = %d per replica x %d, lr %g%s",
                distribute.strategy_label(ctx.strategy), run_plan.config.strategy, ctx.replicas, ctx.global_batch,
                recipe.batch_size, ctx.replicas, recipe.lr,
                " (scaled linearly from the paper's batch)" if run_plan.config.scale_lr else "")
    regularization = run_plan.regularization
    if run_plan.config.recipe != "paper" or regularization.active or recipe.warmup_epochs:
        options = ", ".join(f"{k} {v}" for k, v in regularization.to_json().items()) or "no regularization options"
        ema_line = f"; EMA decay {ctx.schedule.ema_decay:.6g} per step" if ctx.schedule.ema_decay else ""
        logger.info("Recipe: %s (%s), %s schedule, warm-up %g epochs (%d steps); %s%s", run_plan.config.recipe,
                    recipe.source, recipe.schedule, recipe.warmup_epochs, ctx.schedule.warmup_steps, options,
                    ema_line)


def _training_data(ctx: _Context, first_epoch: int, epochs: int):
    """The training pipeline of ``fit``'s epochs ``first_epoch`` .. ``epochs - 1`` at the global batch, each epoch
    drawn from ``(seed, epoch)`` alone (:func:`keras_convnets.data.pipelines.train_dataset`), with the
    regularization's per-image and per-batch ops, ``steps`` batches an epoch, sharded by data across workers."""
    run_plan, spec, regularization = ctx.plan, ctx.plan.spec, ctx.plan.regularization
    fill = tuple(int(round(255 * m)) for m in spec.statistics.mean)  # erased pixels: 0 once the model normalizes
    train_ds = pipelines.train_dataset(spec, ctx.global_batch, seed=run_plan.config.seed, epochs=epochs,
                                       first_epoch=first_epoch, steps_per_epoch=ctx.steps, settings=ctx.settings,
                                       drop_remainder=ctx.whole_batches,
                                       per_image=regularization.per_image_op(fill),
                                       per_batch=regularization.per_batch_op(spec.num_classes))
    return distribute.shard_by_data(train_ds) if distribute.is_multi_worker(ctx.strategy) else train_ds


def _test_data(ctx: _Context):
    """The test pipeline at the global batch (one-hot labels when training takes soft ones), sharded by data across
    workers; where batches must be whole (JAX over several devices), the last one padded with rows of weight 0."""
    from keras_convnets.data import augment

    test_ds = pipelines.eval_dataset(ctx.plan.spec, ctx.global_batch, settings=ctx.settings)
    if ctx.plan.regularization.soft_labels:  # the loss takes one-hot labels
        test_ds = augment.soft_labels(test_ds, ctx.plan.spec.num_classes)
    if distribute.process_count(ctx.strategy) > 1:  # Keras shards each batch over the hosts: all of one size
        test_ds = pipelines.padded_batches(test_ds, ctx.global_batch, whole=True)
    elif ctx.whole_batches and ctx.replicas > 1:
        test_ds = pipelines.padded_batches(test_ds, ctx.replicas)
    return distribute.shard_by_data(test_ds) if distribute.is_multi_worker(ctx.strategy) else test_ds


def _compile(model, ctx: _Context, phase_recipe: recipes.Recipe, epochs: int) -> None:
    """Compiles ``model`` for ``epochs`` of ``phase_recipe``: its optimizer and schedule over the run's steps, the
    loss the labels need (soft labels: categorical with the label smoothing), accuracy, and the runtime settings'
    compile options (``fit`` gets ``steps_per_epoch`` on the run's stream of epochs, so whole executions must fit an
    epoch)."""
    from keras_convnets.models.backend import keras

    optimizer = recipes.optimizer(phase_recipe, ctx.steps * epochs)
    if ctx.precision.policy == "mixed_float16":
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    regularization = ctx.plan.regularization
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=regularization.label_smoothing) \
        if regularization.soft_labels else keras.losses.SparseCategoricalCrossentropy()
    # Where evaluation batches are padded with rows of weight 0 (JAX), accuracy must read the weights: Keras updates
    # `metrics` without them and only `weighted_metrics` with them (keras/src/trainers/compile_utils.py,
    # CompileMetrics.update_state); training passes no weights, so there it is the same accuracy.
    accuracy = {"weighted_metrics" if ctx.whole_batches else "metrics": ["accuracy"]}
    model.compile(optimizer=optimizer, loss=loss, **accuracy,
                  **runtime_settings.compile_options(ctx.plan.info, ctx.steps, settings=ctx.settings))


def _build_and_compile(ctx: _Context):
    """Phase 3: the seeded model built in the strategy's scope at the run's precision and compiled for the recipe;
    returns it and ``compile_for(recipe, epochs)``, which the frozen-backbone phase compiles it again with."""
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
    """Phase 4: the run directory this process writes, for the rest of the run. The chief creates ``OUT`` (only now
    that the model is built: OUT is touched only by a run that can start), holds its lock, marks the run running
    and finishes an interrupted export; another worker writes to a temporary directory of its own (the standard
    pattern), deleted at the end."""
    directory = ctx.plan.directory
    if ctx.chief:
        directory.create()
        with directory.locked():
            directory.start(ctx.plan.arguments, ctx.plan.spec.summary(), ctx.plan.config.force)
            publish.recover(directory.saved_model)
            yield directory
        return
    os.makedirs(directory.path, exist_ok=True)
    write_dir = tempfile.mkdtemp(prefix=f"keras_convnets-{distribute.task_name()}-")
    try:
        yield RunDirectory(write_dir)
    finally:
        shutil.rmtree(write_dir, ignore_errors=True)


class _Callbacks(NamedTuple):
    """A run's callbacks in ``fit``'s order, and the two a phase reads after ``fit``."""

    all: list
    guard: Any
    averaging: Any


def _callbacks(ctx: _Context, written: RunDirectory) -> _Callbacks:
    """Phase 5: the callbacks: the backup (with the EMA's shadow weights in each checkpoint), the per-epoch history
    (after the backup: see its docstring), the divergence guard, the EMA (its decay and warm-up from the run's
    schedule), and TensorBoard on the chief when it is installed."""
    from keras_convnets.models.backend import keras

    schedule = ctx.schedule
    guard = run_callbacks.divergence_guard()
    averaging = ema.callback(schedule.ema_decay, schedule.ema_warmup_steps) if schedule.ema_decay else None
    extras = [averaging] if averaging else []
    callbacks = [checkpoint.backup(ctx.plan.directory.backup, extras=extras), run_callbacks.epoch_history(written),
                 guard] + extras
    if ctx.chief and importlib.util.find_spec("tensorboard") is not None:
        callbacks.append(keras.callbacks.TensorBoard(ctx.plan.directory.logs, write_graph=False, profile_batch=0))
    elif ctx.chief:
        logger.info("TensorBoard is not installed: no logs/ written (pip install tensorboard)")
    return _Callbacks(callbacks, guard, averaging)


def _restore(ctx: _Context, model, callbacks: _Callbacks) -> Optional[int]:
    """Phase 6: the newest checkpoint that loads whole, loaded before ``fit`` (the EMA's shadow with it); the
    epochs it finished (0: none), so the input pipeline starts where the uninterrupted run was. None under tf-keras,
    whose own ``BackupAndRestore`` restores at the start of ``fit``."""
    from keras_convnets.models.backend import KERAS_3

    if not KERAS_3:
        return None
    extras = [callbacks.averaging] if callbacks.averaging else []
    return checkpoint.restore(model, ctx.plan.directory.backup, extras)


def _fit_phases(ctx: _Context, model, compile_for, restored: Optional[int], callbacks: _Callbacks, test_ds, verbose):
    """Phase 7: the frozen-backbone epochs (unless the run restored past them), then the recipe's epochs from
    where the run restored; the test ``[loss, accuracy]``, or None when the loss diverged first."""
    bf16 = ctx.precision.onednn_bf16
    head_epochs = ctx.plan.freeze_epochs
    resumed = ctx.plan.directory.has_backup() if restored is None else restored > 0
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


def _history_rows(ctx: _Context, written: RunDirectory) -> List[Dict[str, Any]]:
    """Phase 8: the epochs' rows as written, plotted on the chief as ``curves.png``."""
    rows = written.history()
    if ctx.chief:
        run_callbacks.plot_history(rows, ctx.plan.directory.curves)
    return rows


def _stop_if_diverged(ctx: _Context, guard) -> None:
    """Phase 9: a :class:`DivergedError` if the loss became NaN, after the chief recorded it (and dropped the
    backup: its weights belong to a learning rate that diverges)."""
    if guard.diverged_at is None:
        return
    message = f"loss became NaN at epoch {guard.diverged_at}; lower --lr (it was {ctx.recipe.lr:g})"
    if ctx.chief:
        ctx.plan.directory.diverged(ctx.plan.arguments, guard.diverged_at, message)
    raise DivergedError(message)


def _export(ctx: _Context, model, test_ds, written: RunDirectory) -> str:
    """Phase 10: the SavedModel, checked on 64 test images; every worker takes part (reading synchronized
    variables is a collective), the chief's lands in ``OUT/saved_model``, which is the path returned."""
    spec = ctx.plan.spec
    check_images = next(iter(test_ds))[0].numpy()[:64].astype(np.uint8)
    path = saved_model.export_saved_model(model, written.saved_model, list(spec.class_names), check_images,
                                          crop_fraction=spec.crop_fraction)
    return path if ctx.chief else ctx.plan.directory.saved_model


def _record_complete(ctx: _Context, scores, export_path: str) -> None:
    """Phase 11 (chief): ``run.json`` complete, then the backup deleted: a run killed before this resumes with no
    epoch left to train."""
    run_plan = ctx.plan
    run_plan.directory.complete({
        "arguments": run_plan.arguments, "data": run_plan.spec.summary(), "test_accuracy": scores[1],
        "test_loss": scores[0], "export_path": export_path, "class_names": list(run_plan.spec.class_names),
        "strategy": distribute.strategy_label(ctx.strategy), "replicas": ctx.replicas,
        "global_batch_size": ctx.global_batch, "lr": ctx.recipe.lr, "compute_precision": ctx.precision.label})


def _run(run_plan: RunPlan, strategy, verbose) -> TrainResult:
    """A planned run, phase by phase (each function's docstring says what it does and why in that order), with the
    strategy's run scope held throughout (JAX's distribution: :func:`keras_convnets.runtime.distribute.run_scope`)."""
    with distribute.run_scope(strategy):
        return _phases(run_plan, strategy, verbose)


def _phases(run_plan: RunPlan, strategy, verbose) -> TrainResult:
    ctx = _context(run_plan, strategy)
    _announce(ctx)
    test_ds = _test_data(ctx)
    model, compile_for = _build_and_compile(ctx)
    with _claimed_out_dir(ctx) as written:
        callbacks = _callbacks(ctx, written)
        restored = _restore(ctx, model, callbacks)
        scores = _fit_phases(ctx, model, compile_for, restored, callbacks, test_ds, verbose)
        rows = _history_rows(ctx, written)
        _stop_if_diverged(ctx, callbacks.guard)
        export_path = _export(ctx, model, test_ds, written)
        if ctx.chief:
            _record_complete(ctx, scores, export_path)
    history = {key: [row.get(key) for row in rows] for key in dict.fromkeys(k for row in rows for k in row)}
    return TrainResult(run_plan.out, export_path, scores[1], scores[0], history, run_plan.arguments)


def train(model, dataset=None, *, verbose="auto", **options) -> TrainResult:
    """Trains the registered ``model`` on ``dataset`` with its paper's recipe, evaluates it and exports it:
    ``run(plan(model, dataset, **options))``.

    Args:
        model: a registered model name (``"resnet20"``, :func:`keras_convnets.list_models`), or a
            :class:`~keras_convnets.training.config.TrainConfig` (then no ``dataset`` or ``options``).
        dataset: a tfds image-classification name or a folder of class folders (default ``"cifar10"``).
        verbose: ``model.fit``'s.
        **options: the fields of :class:`~keras_convnets.training.config.TrainConfig` (``epochs``, ``batch_size``,
            ``lr``, ``schedule``, ``weights``, ``freeze_backbone``, ``recipe``, ``regularization``, ``precision``,
            ``strategy``, ``out``, ``force``, ...) and those of
            :class:`~keras_convnets.training.recipes.Regularization` (``ema=0.999``, ``mixup=0.2``, ...). An unknown
            option is a TypeError naming the closest ones.

    Returns:
        A :class:`TrainResult`.
    """
    return run(plan(model, dataset, **options), verbose=verbose)

