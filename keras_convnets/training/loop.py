"""Training a registered model on a tfds dataset or a folder of images with ``model.fit`` under a ``tf.distribute``
strategy.

``train("resnet20", epochs=3, out="runs/r20")`` resolves the paper's recipe for the model's family
(:mod:`keras_convnets.training.recipes`), builds the model inside the strategy's scope behind its uint8
preprocessing, fits it, evaluates it on the test split, exports ``OUT/saved_model`` and returns a :class:`TrainResult`.
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
import importlib.util
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, Optional

from keras_convnets import checks
from keras_convnets.training import data, datasets, lock, performance, recipes

#: ``precision`` values (:func:`keras_convnets.training.performance.choose_precision` says what each computes where).
PRECISIONS = performance.PRECISIONS
RUN_FILE = "run.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
CURVES_PNG = "curves.png"


class RunMismatchError(ValueError):
    """The output directory holds a different run."""


class ModelOptionError(ValueError):
    """The model's factory rejected an option (``model_kwargs``)."""


class RunCompleteError(ValueError):
    """The output directory holds this very run, complete: training it again needs ``force``."""


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class DataError(ValueError):
    """The dataset's files could not be read while training (corrupt or missing tfrecords)."""


#: The largest seed TensorFlow and NumPy accept.
MAX_SEED = 2**32 - 1


@dataclasses.dataclass
class TrainResult:
    """What a run leaves: per-epoch ``history`` (metric name → list), the SavedModel's path, the test accuracy."""

    out: str
    export_path: str
    test_accuracy: float
    test_loss: float
    history: Dict[str, List[float]]
    arguments: Dict[str, Any]


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A run with every default resolved and every argument checked, before TensorFlow does any work."""

    info: Any
    spec: datasets.DatasetDescription
    recipe: recipes.Recipe
    model_kwargs: Dict[str, Any]
    precision: str
    seed: int
    out: str
    data_dir: Optional[str]
    strategy: str
    augmentation: bool
    steps_per_epoch: Optional[int] = None
    scale_lr: bool = False
    reference_batch_size: Optional[int] = None
    force: bool = False
    weights: Optional[str] = None
    freeze_epochs: int = 0
    image_size: Optional[int] = None  # given explicitly (else the dataset's own size, or the model's)
    steps_per_execution: Optional[int] = None   # runtime settings: None lets performance.choose_settings decide;
    jit_compile: Optional[bool] = None          # not part of the run's identity (a resumed run may change them)
    weights_channels: Optional[str] = None      # "rgb" / "bgr" as given; None: decided by the weights' provenance
    recipe_name: str = "paper"                  # recipes.RECIPES
    regularization: recipes.Regularization = recipes.Regularization()  # the modern options (all off: the papers')

    @property
    def arguments(self) -> Dict[str, Any]:
        """What identifies the run in ``run.json`` (the strategy and data directory may change on resumption;
        ``batch_size`` is per replica)."""
        r = self.recipe
        extra = {key: value for key, value in dict(steps_per_epoch=self.steps_per_epoch,
                                                   scale_lr=self.scale_lr or None, image_size=self.image_size,
                                                   weights=self.weights, weights_channels=self.weights_channels,
                                                   freeze_backbone=self.freeze_epochs or None,
                                                   recipe=None if self.recipe_name == "paper" else self.recipe_name,
                                                   warmup_epochs=r.warmup_epochs or None,
                                                   regularization=self.regularization.to_json() or None).items()
                 if value is not None}  # the papers' runs record what they always did: their run.json still matches
        return {"model": self.info.name, "dataset": self.spec.name, "epochs": r.epochs, "batch_size": r.batch_size,
                "lr": r.lr, "weight_decay": r.weight_decay, "schedule": r.schedule, "boundaries": list(r.boundaries),
                "factor": r.factor, "momentum": r.momentum, "nesterov": r.nesterov,
                "warmup_fraction": r.warmup_fraction, "warmup_lr": r.warmup_lr, "augmentation": self.augmentation,
                "precision": self.precision, "seed": self.seed, "model_kwargs": self.model_kwargs, **extra}

    def global_batch_size(self, replicas: int) -> int:
        """The batch one optimizer step sees: the per-replica batch times the replicas."""
        return self.recipe.batch_size * replicas

    def scaled_recipe(self, replicas: int) -> recipes.Recipe:
        """The recipe with its learning rates scaled linearly by global batch / the paper's batch when
        ``scale_lr`` (Goyal et al. 2017), else unchanged."""
        if not self.scale_lr:
            return self.recipe
        factor = self.global_batch_size(replicas) / (self.reference_batch_size or self.recipe.batch_size)
        return dataclasses.replace(self.recipe, lr=self.recipe.lr * factor, warmup_lr=self.recipe.warmup_lr * factor)


def _check_weights(info, weights, freeze_backbone):
    """``(weights, freeze epochs)`` checked: None, "imagenet" (only for the models with published weights), a
    torchvision / timm source (``"torchvision"``, ``"timm[:tag]"``, for the architectures they publish) or an existing
    file (made absolute); freeze epochs need weights."""
    from keras_convnets.models import registry, torch_weights
    from keras_convnets.models import weights as weights_lib

    if weights is not None and weights != "imagenet":
        weights_lib.check_argument(weights, info.weights, info.name, info.architecture)
        if not torch_weights.is_named_source(weights):
            weights = os.path.abspath(os.fspath(weights))
    elif weights == "imagenet" and not info.weights:
        published = [name for name in registry.list_models() if registry.model_info(name).weights]
        raise ValueError(f"weights='imagenet' (--weights imagenet): {info.name} has no published ImageNet weights; "
                         f"the models that do: {', '.join(published)} (or pass a weights file)")
    if freeze_backbone is None:
        return weights, 0
    checks.positive_int("freeze_backbone", freeze_backbone)
    if weights is None:
        raise ValueError("freeze_backbone (--freeze-backbone) trains a new head on a frozen pretrained backbone: it "
                         "needs weights (--weights imagenet|PATH)")
    return weights, freeze_backbone


def _recorded_statistics(out, dataset):
    """The statistics ``OUT/run.json`` recorded for ``dataset`` (a resumed run normalizes as it started), or None."""
    try:
        record = read_run_record(out)
    except RunMismatchError:
        return None  # check_out_dir says why
    recorded = (record or {}).get("data")
    if not isinstance(recorded, dict) or (record.get("arguments") or {}).get("dataset") not in (
            dataset, os.path.abspath(dataset)):
        return None
    return recorded.get("statistics")


def plan(model_name, dataset="cifar10", *, epochs=None, batch_size=None, lr=None, weight_decay=None, schedule=None,
         strategy="auto", precision="float32", out=None, data_dir=None, seed=0, model_kwargs=None,
         augmentation=None, steps_per_epoch=None, scale_lr=False, force=False, image_size=None, weights=None,
         freeze_backbone=None, steps_per_execution=None, jit_compile=None, weights_channels=None, recipe="paper",
         regularization=None, warmup_epochs=None) -> RunPlan:
    """Resolves a run's arguments against the model's recipe and checks them (ValueError with a one-line reason:
    unknown model, dataset or strategy, multi-worker without tf-keras, dataset not prepared or not a folder of class
    folders, weights the model does not have, bad numbers, ``out`` not a writable directory, holding a different
    run, or this run complete and ``force`` not given).

    ``recipe``: ``"paper"`` (the family's paper, today's behaviour) or ``"modern"`` (torchvision's v2 recipe scaled to
    the epochs: :func:`keras_convnets.training.recipes.modern_recipe`, ``modern_regularization``); the explicit
    arguments override either. ``regularization``: a :class:`~keras_convnets.training.recipes.Regularization` (used
    as given), or a mapping of some of its fields overriding the recipe's (the command line's flags).
    ``warmup_epochs``: a linear learning-rate warm-up before any schedule."""
    from keras_convnets.models import registry
    from keras_convnets.training import distribute

    info = registry.model_info(model_name)
    if not isinstance(dataset, (str, os.PathLike)):
        raise ValueError(f"dataset must be a tfds name or a folder path; got {dataset!r}")
    dataset = os.fspath(dataset)
    weights, freeze_epochs = _check_weights(info, weights, freeze_backbone)
    checks.one_of("weights_channels", weights_channels, (None, *datasets.CHANNEL_ORDERS))
    if weights_channels is not None and weights is None:
        raise ValueError("weights_channels (--weights-channels) says which channel order pretrained weights take: it "
                         "needs weights (--weights imagenet|PATH)")
    if image_size is not None:
        checks.integer_in("image_size", image_size, 8, 4096)
    checks.one_of("precision", precision, PRECISIONS)
    if strategy not in distribute.STRATEGIES:
        raise distribute.StrategyError(f"unknown strategy {strategy!r}; known strategies: "
                                       f"{', '.join(distribute.STRATEGIES)}")
    if distribute.needs_legacy_keras(strategy):
        distribute.check_keras_for_multi_worker()
    checks.one_of("recipe (--recipe)", recipe, recipes.RECIPES)
    _check_regularization(regularization)  # each option's value, before any data is read
    recipe_name, pretrained = recipe, weights is not None
    paper = recipes.recipe_for(info, pretrained=pretrained)
    reference_batch_size = paper.batch_size
    recipe = dataclasses.replace(paper, **{key: value for key, value in dict(epochs=epochs, batch_size=batch_size)
                                           .items() if value is not None})
    checks.positive_int("epochs", recipe.epochs)
    checks.positive_int("batch_size", recipe.batch_size)
    if recipe_name == "modern":
        recipe = recipes.modern_recipe(recipe)
        if schedule == "piecewise":  # the paper's boundaries, asked for by name
            recipe = dataclasses.replace(recipe, schedule="piecewise", boundaries=paper.boundaries)
    recipe = recipes.parse_schedule(schedule, recipe)
    overrides = {key: value for key, value in dict(lr=lr, weight_decay=weight_decay,
                                                   warmup_epochs=warmup_epochs).items() if value is not None}
    recipe = dataclasses.replace(recipe, **overrides)
    checks.number_in("lr", recipe.lr, 0.0, low_open=True)
    checks.number_in("weight_decay", recipe.weight_decay, 0.0)
    checks.number_in("warmup_epochs (--warmup-epochs)", recipe.warmup_epochs, 0.0, float(recipe.epochs))
    checks.integer_in("seed", seed, 0, MAX_SEED)
    if steps_per_epoch is not None:
        checks.positive_int("steps_per_epoch", steps_per_epoch)
    checks.one_of("augmentation (None: the dataset's usual setting)", augmentation, (None, True, False))
    if steps_per_execution is not None:
        checks.positive_int("steps_per_execution", steps_per_execution)
    checks.one_of("jit_compile (None: the machine's choice)", jit_compile, (None, True, False))
    data_dir = data.resolve_data_dir(data_dir)
    out = os.path.abspath(out or os.path.join("runs", f"{info.name}_{os.path.basename(dataset.rstrip('/'))}"))
    statistics = _recorded_statistics(out, dataset)
    if statistics is None and pretrained:
        statistics = datasets.pretrained_statistics(info.name, weights, weights_channels)
    spec = describe_dataset(info, dataset, image_size=image_size, augmentation=augmentation, pretrained=pretrained,
                            statistics=statistics, data_dir=data_dir)
    kwargs = {**recipe.model_kwargs(spec.augment), **(model_kwargs or {})}
    regularization = _regularization(recipe_name, recipe, regularization,
                                     planned_steps(spec.train.count, recipe, steps_per_epoch) * recipe.epochs)
    run_plan = RunPlan(info, spec, recipe, kwargs, precision, seed, out, data_dir, strategy, spec.augment,
                       steps_per_epoch, bool(scale_lr), reference_batch_size, bool(force), weights, freeze_epochs,
                       image_size, steps_per_execution, jit_compile, weights_channels, recipe_name, regularization)
    if not distribute.needs_legacy_keras(strategy) or distribute.is_chief_task():
        check_out_dir(out, run_plan.arguments, force)  # other workers write nothing in out but their backup
    return run_plan


def planned_steps(count, recipe, steps_per_epoch=None) -> int:
    """Optimizer steps per epoch on one replica: the training images over the batch, capped by ``steps_per_epoch``."""
    steps = math.ceil(count / recipe.batch_size)
    return steps if steps_per_epoch is None else min(steps, steps_per_epoch)


def _check_regularization(given):
    """A one-line ValueError for a ``regularization`` that is not a Regularization, a dict of its fields or None, or
    a field's value it does not accept."""
    if given is None or isinstance(given, recipes.Regularization):
        return
    if not isinstance(given, dict):
        checks.fail("regularization", "a Regularization, a dict of its fields or None", given)
    fields = [field.name for field in dataclasses.fields(recipes.Regularization)]
    unknown = sorted(set(given) - set(fields))
    if unknown:
        checks.fail("regularization", f"fields of Regularization ({', '.join(fields)})", unknown)
    recipes.Regularization(**given)


def _regularization(recipe_name, recipe, given, total_steps) -> recipes.Regularization:
    """The run's :class:`~keras_convnets.training.recipes.Regularization`: ``given`` as is, or the named recipe's
    (the papers': none) with the fields of a ``given`` mapping replaced. An EMA turned on by a mapping follows the
    weights during the recipe's warm-up unless the mapping says otherwise. The EMA decay of the modern recipe is
    planned for one replica (``total_steps``)."""
    if isinstance(given, recipes.Regularization):
        return given
    base = recipes.modern_regularization(recipe, total_steps) if recipe_name == "modern" \
        else recipes.Regularization()
    given = dict(given or {})
    if given.get("ema") and "ema_warmup_steps" not in given:
        given["ema_warmup_steps"] = recipes.warmup_steps(recipe, total_steps)
    return dataclasses.replace(base, **given)


def describe_dataset(info, dataset, *, image_size=None, augmentation=None, pretrained=False, statistics=None,
                     data_dir=None) -> datasets.DatasetDescription:
    """The run's :class:`~keras_convnets.training.datasets.DatasetDescription`: a CIFAR-family name at its own size
    by default (today's pipeline; downloaded by tfds when missing and reachable), anything else at ``image_size``,
    default the model's input size. ``augmentation`` False: none; True: the size's usual kind even where the dataset
    usually has none (SVHN); None: the dataset's usual setting. ``pretrained``: normalize as the model's ImageNet
    weights expect (:func:`keras_convnets.training.datasets.imagenet_statistics`)."""
    if dataset in data.DATASETS:
        data.dataset_info(dataset, data_dir, download=True)  # downloads, or says how to point at a copy
    elif image_size is None:
        image_size = info.input_size
    kind = "none" if augmentation is False else None
    description = datasets.describe(dataset, image_size=image_size, augmentation=kind,
                                    pretrained=info.name if pretrained else None, statistics=statistics,
                                    data_dir=data_dir)
    if augmentation and not description.augment:
        description = datasets.describe(dataset, image_size=image_size, augmentation="cifar"
                                        if description.image_size <= 32 else "imagenet",
                                        statistics=description.statistics, data_dir=data_dir)
    return description


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def read_run_record(out) -> Optional[Dict[str, Any]]:
    """``OUT/run.json`` as a dict, None when there is none; a RunMismatchError when it is not a JSON object."""
    run_file = os.path.join(out, RUN_FILE)
    if not os.path.exists(run_file):
        return None
    try:
        record = _read_json(run_file)
    except (OSError, ValueError) as error:
        raise RunMismatchError(f"{run_file} cannot be read as JSON ({error}); choose another --out") from None
    if not isinstance(record, dict) or not isinstance(record.get("arguments", {}), dict):
        raise RunMismatchError(f"{run_file} is not a run record (a JSON object with 'arguments'); choose another "
                               "--out")
    return record


def check_writable_dir(out):
    """A RunMismatchError (one line) unless ``out`` is, or can be created as, a directory this process can write."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunMismatchError(f"output directory {out} is a file, not a directory; choose another --out")
    existing = out
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise RunMismatchError(f"output directory {out} cannot be created: {existing} is a file; choose another "
                               "--out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunMismatchError(f"output directory {out} is not writable ({existing}: permission denied or "
                               "read-only); choose another --out")


def check_out_dir(out, arguments, force=False):
    """Refuses an output directory that is not a writable directory, holds another run (different ``run.json``) or
    unrelated files, or holds this run complete (unless ``force``). A diverged run's directory is free."""
    check_writable_dir(out)
    record = read_run_record(out)
    if record is not None:
        recorded = record.get("arguments")
        wanted = json.loads(json.dumps(arguments))
        if record.get("status") == "diverged":
            return
        if recorded != wanted:
            changed = sorted(k for k in set(wanted) | set(recorded or {})
                             if (recorded or {}).get(k) != wanted.get(k))
            raise RunMismatchError(f"output directory {out} holds a different run ({', '.join(changed)} differ); "
                                   "choose another --out or delete it")
        if record.get("status") == "complete" and not force:
            accuracy = record.get("test_accuracy")
            score = f" (test accuracy {accuracy:.4f})" if isinstance(accuracy, float) else ""
            raise RunCompleteError(f"the run in {out} is complete{score}; pass --force (force=True) to train it "
                                   "again, or choose another --out")
    elif os.path.isdir(out) and [name for name in os.listdir(out) if name != lock.LOCK_FILE]:
        raise RunMismatchError(f"output directory {out} is not empty and holds no {RUN_FILE}; choose another --out")


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
                rows = _read_json(path) if os.path.exists(path) else []
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
    import numpy as np

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
    from keras_convnets.training import finetune

    kwargs = dict(run_plan.model_kwargs, input_shape=tuple(image_shape), weight_decay=run_plan.recipe.weight_decay)
    if policy is None:
        policy = run_plan.precision if run_plan.precision.startswith("mixed_") else "float32"
    if policy != "float32":
        kwargs["dtype"] = policy
    if run_plan.weights is None:
        model = run_plan.info.build(classes=num_classes, **kwargs)
    else:
        model = finetune.build(run_plan.info, run_plan.weights, num_classes,
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
    check_out_dir(out, run_plan.arguments, run_plan.force)
    record = read_run_record(out)
    if record is not None and (record.get("status") == "diverged" or record.get("arguments") != json.loads(
            json.dumps(run_plan.arguments))):
        _remove_backup(out)
        for name in (HISTORY_JSON, HISTORY_CSV, CURVES_PNG):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(out, name))
    _write_json(os.path.join(out, RUN_FILE), {"status": "running", "arguments": run_plan.arguments,
                                              "data": run_plan.spec.summary()})


def _fit(model, train_ds, test_ds, callbacks, epochs, verbose, fit_steps, initial_epoch=0, evaluate=True,
         bf16=False):
    """``model.fit`` (then the test ``[loss, accuracy]`` if ``evaluate``) with unreadable dataset files turned into a
    one-line :class:`DataError`. The test figures are the last epoch's validation, which ``fit`` computed on the
    same data with the weights it ends with (the EMA's too: its callback leaves them in); ``evaluate`` runs again
    only where that validation is missing (a resumed run with no epoch left) or was not the float32 model's:
    ``bf16``, where ``fit`` (its train steps and per-epoch validation) runs under the oneDNN bf16 rewrite and the
    reported accuracy must be the float32 model's, which the export serves."""
    import tensorflow as tf

    try:
        with performance.onednn_bf16() if bf16 else contextlib.nullcontext():
            history = model.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch, validation_data=test_ds,
                                callbacks=callbacks, verbose=verbose, shuffle=False, **fit_steps)  # pipeline shuffles
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
    from keras_convnets.training import distribute

    # First: a multi-worker strategy configures collective ops, which must happen before TF runs anything.
    return _run(run_plan, distribute.get_strategy(run_plan.strategy), verbose)


def _has_backup(out):
    backup = os.path.join(out, "backup")
    return os.path.isdir(backup) and any(not name.startswith(".") for name in os.listdir(backup))


def _train_head(model, strategy, compile_for, recipe, epochs, fit):
    """The frozen-backbone phase: the backbone frozen (BatchNorm in inference mode), the head trained with
    :data:`~keras_convnets.training.recipes.FINE_TUNE_HEAD`'s rate by ``fit``; then every layer unfrozen and the
    model compiled again with ``recipe``. Not backed up: a run killed during it trains it again."""
    from keras_convnets.training import finetune

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


def _run(run_plan: RunPlan, strategy, verbose) -> TrainResult:
    import numpy as np

    from keras_convnets.models.backend import keras
    from keras_convnets.training import augment, checkpoint, distribute, ema, export

    replicas = strategy.num_replicas_in_sync
    chief = distribute.is_chief(strategy)
    out, spec = run_plan.out, run_plan.spec
    recipe = run_plan.scaled_recipe(replicas)
    global_batch = run_plan.global_batch_size(replicas)
    settings = performance.use_settings(performance.choose_settings(
        performance.detect_machine(strategy), steps_per_execution=run_plan.steps_per_execution,
        jit_compile=run_plan.jit_compile, precision=run_plan.precision))
    precision = settings.precision
    print(settings.describe(), flush=True)  # the run's first line: what it chose on this machine, and why
    if not (settings.machine.onednn or settings.machine.accelerators):
        print(performance.kernels_note(), flush=True)
    print(spec.split_note, flush=True)  # then what the data is: which splits, which files were skipped
    if run_plan.weights is not None:  # and how the pretrained weights see it (a BGR file's first conv is reversed)
        print(f"Input normalization: {spec.statistics.source}", flush=True)
    if spec.skipped_report:
        print(spec.skipped_report, flush=True)
    print(f"Strategy: {distribute.strategy_label(strategy)} ({run_plan.strategy}), {replicas} replica(s), "
          f"global batch {global_batch} = {recipe.batch_size} per replica x {replicas}, lr {recipe.lr:g}"
          + (" (scaled linearly from the paper's batch)" if run_plan.scale_lr else ""), flush=True)

    regularization = run_plan.regularization
    if run_plan.recipe_name != "paper" or regularization.active or recipe.warmup_epochs:
        options = ", ".join(f"{k} {v}" for k, v in regularization.to_json().items()) or "no regularization options"
        print(f"Recipe: {run_plan.recipe_name} ({recipe.source}), {recipe.schedule} schedule, warm-up "
              f"{recipe.warmup_epochs:g} epochs; {options}", flush=True)
    names, image_shape = list(spec.class_names), spec.image_shape
    fill = tuple(int(round(255 * m)) for m in spec.statistics.mean)  # erased pixels: 0 once the model normalizes
    train_ds = datasets.train_dataset(spec, global_batch, seed=run_plan.seed,
                                      per_image=augment.per_image_op(regularization, fill))
    test_ds = datasets.eval_dataset(spec, global_batch)
    if regularization.soft_labels:  # one-hot labels (mixed by mixup / cutmix) and a loss that takes them
        train_ds = augment.soft_labels(train_ds, regularization, len(names), seed=run_plan.seed)
        test_ds = augment.soft_labels(test_ds, recipes.Regularization(), len(names))
    steps = math.ceil(spec.train.count / global_batch)
    if run_plan.steps_per_epoch is not None:
        steps = min(steps, run_plan.steps_per_epoch)
        train_ds = train_ds.repeat()  # capped epochs continue where the previous one stopped
    if distribute.is_multi_worker(strategy):
        train_ds, test_ds = distribute.shard_by_data(train_ds), distribute.shard_by_data(test_ds)

    keras.utils.set_random_seed(run_plan.seed)
    with strategy.scope():
        try:
            model = build_model(run_plan, image_shape, len(names), policy=precision.policy)
        except (TypeError, ValueError) as error:
            raise ModelOptionError(f"{run_plan.info.name}: {error}") from None
        # fit gets steps_per_epoch exactly when the dataset repeats: then Keras 3 runs whole executions.
        repeated_steps = steps if run_plan.steps_per_epoch is not None else None

        def compile_for(phase_recipe, epochs):
            optimizer = recipes.optimizer(phase_recipe, steps * epochs)
            if precision.policy == "mixed_float16":
                optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=regularization.label_smoothing) \
                if regularization.soft_labels else keras.losses.SparseCategoricalCrossentropy()
            model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                          **performance.compile_options(run_plan.info, repeated_steps))

        compile_for(recipe, recipe.epochs)
    with contextlib.ExitStack() as held:
        if chief:  # the model is built: OUT is touched only by a run that can start
            _make_out_dir(out)
            held.enter_context(lock.held(out))
            _start_record(out, run_plan)
            export.recover(os.path.join(out, "saved_model"))
        else:
            os.makedirs(out, exist_ok=True)
        # Non-chief workers: the standard pattern, a temporary directory of their own, deleted at the end.
        write_dir = out if chief else tempfile.mkdtemp(prefix=f"keras_convnets-{distribute.task_name()}-")
        guard = _divergence_guard_class()()
        # The EMA's shadow weights are saved in each checkpoint and evaluated in place of the weights (ema.py).
        averaging = ema.callback(regularization.ema, regularization.ema_warmup_steps) if regularization.ema else None
        try:
            callbacks = [
                checkpoint.backup_and_restore(os.path.join(out, "backup"), extras=[averaging] if averaging else []),
                _history_callback_class()(write_dir),  # after the backup: see its docstring
                guard,
            ] + ([averaging] if averaging else [])
            if chief and importlib.util.find_spec("tensorboard") is not None:
                callbacks.append(keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False,
                                                             profile_batch=0))
            elif chief:
                print("TensorBoard is not installed: no logs/ written (pip install tensorboard)", flush=True)
            fit_steps = {} if repeated_steps is None else {"steps_per_epoch": steps}
            head_epochs = run_plan.freeze_epochs
            if head_epochs and not _has_backup(out):  # a run resumed after its frozen phase restores past it
                head_callbacks = [c for c in callbacks[1:] if c is not averaging]  # the EMA starts with every layer
                _train_head(model, strategy, compile_for, recipe, head_epochs, lambda: _fit(
                    model, train_ds, test_ds, head_callbacks, head_epochs, verbose, fit_steps, evaluate=False,
                    bf16=precision.onednn_bf16))
            if guard.diverged_at is None:
                test_loss, test_accuracy = _fit(model, train_ds, test_ds, callbacks, head_epochs + recipe.epochs,
                                                verbose, fit_steps, initial_epoch=head_epochs,
                                                bf16=precision.onednn_bf16)
            history_path = os.path.join(write_dir, HISTORY_JSON)
            rows = _read_json(history_path) if os.path.exists(history_path) else []
            if chief:
                plot_history(rows, os.path.join(out, CURVES_PNG))
            if guard.diverged_at is not None:
                message = f"loss became NaN at epoch {guard.diverged_at}; lower --lr (it was {recipe.lr:g})"
                if chief:
                    _remove_backup(out)  # its weights belong to a learning rate that diverges
                    _write_json(os.path.join(out, RUN_FILE), {"status": "diverged", "arguments": run_plan.arguments,
                                                              "diverged_at_epoch": guard.diverged_at, "error": message})
                raise DivergedError(message)
            check_images = next(iter(test_ds))[0].numpy()[:64].astype(np.uint8)
            export_path = export.export_saved_model(model, os.path.join(write_dir, "saved_model"), names, check_images,
                                                    crop_fraction=spec.crop_fraction)
            distribute.debug_dump_weights(model)
        finally:
            if not chief:
                shutil.rmtree(write_dir, ignore_errors=True)
        if not chief:
            export_path = os.path.join(out, "saved_model")  # where the chief writes it
        history = {key: [row.get(key) for row in rows] for key in dict.fromkeys(k for row in rows for k in row)}
        if chief:
            _write_json(os.path.join(out, RUN_FILE), {"status": "complete", "arguments": run_plan.arguments,
                                                      "data": spec.summary(), "test_accuracy": test_accuracy,
                                                      "test_loss": test_loss,
                                                      "export_path": export_path, "class_names": names,
                                                      "strategy": distribute.strategy_label(strategy),
                                                      "replicas": replicas, "global_batch_size": global_batch,
                                                      "lr": recipe.lr, "compute_precision": precision.label})
            _remove_backup(out)  # only now: a run killed before this line resumes with no epoch left to train
        return TrainResult(out, export_path, test_accuracy, test_loss, history, run_plan.arguments)


def train(model_name, dataset="cifar10", *, epochs=None, batch_size=None, lr=None, weight_decay=None, schedule=None,
          strategy="auto", precision="float32", out=None, data_dir=None, seed=0, model_kwargs=None,
          augmentation=None, steps_per_epoch=None, scale_lr=False, force=False, image_size=None, weights=None,
          freeze_backbone=None, steps_per_execution=None, jit_compile=None, weights_channels=None, recipe="paper",
          regularization=None, warmup_epochs=None, verbose="auto") -> TrainResult:
    """Trains the registered ``model_name`` on ``dataset`` with its paper's recipe and exports it.

    ``dataset``: a tfds image-classification name (``"cifar10"``, ``"oxford_flowers102"``) or a folder of class
    folders; ``image_size``: the training size (default: a CIFAR-family dataset's own 32, else the model's input).
    ``weights``: ``"imagenet"`` or a weights file of the model's backbone: fine-tune it under a new classifier with
    :data:`~keras_convnets.training.recipes.FINE_TUNE`, after ``freeze_backbone`` epochs training the head alone on
    the frozen backbone (BatchNorm in inference mode) when given. ``weights_channels``: ``"rgb"`` or ``"bgr"``, the
    channel order the weights were trained on (default: keras.applications' own ResNet-50/101/152 files and
    ``"imagenet"`` are BGR, any other file RGB; :func:`keras_convnets.training.datasets.pretrained_statistics`).
    ``epochs``, ``batch_size``, ``lr``, ``weight_decay`` (coupled L2, PyTorch convention), ``schedule``
    (``piecewise``/``cosine``/``constant`` or boundary fractions) override the recipe; ``model_kwargs`` go to the
    factory (``dropout``, ``stochastic_depth``, ``sync_bn``, ...). ``precision``: ``float32``; ``bf16``
    (a CPU with native bf16: TensorFlow's oneDNN bf16 rewrite of the training graphs, variables, BN statistics and
    the loss float32; a GPU/TPU host: ``mixed_bfloat16``; elsewhere a ValueError); ``auto`` (``bf16`` on a CPU-only
    host with native bf16, else float32); ``mixed_float16`` or ``mixed_bfloat16`` (Keras' policies; the classifier's
    softmax stays float32). The export serves float32 whatever the precision. ``strategy``: ``auto``, ``default``,
    ``mirrored``, ``multi-worker`` (needs tf-keras, see :mod:`keras_convnets.training.distribute`) or ``tpu``.
    ``batch_size`` is per replica: the global batch is it times the replicas; ``scale_lr=True`` scales the
    learning rate by global batch / the paper's batch. ``steps_per_epoch`` caps an epoch (quick runs, tests).
    ``out`` defaults to ``runs/MODEL_DATASET``; a complete run there is trained again only with ``force=True``.
    ``steps_per_execution`` / ``jit_compile`` override the runtime settings chosen for this machine
    (:func:`keras_convnets.training.performance.choose_settings`; the run's first line shows them).
    ``recipe``: ``"paper"`` (default) or ``"modern"`` (torchvision's v2 recipe scaled to the epochs);
    ``regularization``: a :class:`~keras_convnets.training.recipes.Regularization` or a dict of some of its fields
    overriding the recipe's (label smoothing, mixup, cutmix, RandAugment / TrivialAugment, random erasing, EMA);
    ``warmup_epochs``: a linear learning-rate warm-up before any schedule (:func:`plan`).
    """
    return run(plan(model_name, dataset, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                    schedule=schedule, strategy=strategy, precision=precision, out=out, data_dir=data_dir,
                    seed=seed, model_kwargs=model_kwargs, augmentation=augmentation, steps_per_epoch=steps_per_epoch,
                    scale_lr=scale_lr, force=force, image_size=image_size, weights=weights,
                    freeze_backbone=freeze_backbone, steps_per_execution=steps_per_execution,
                    jit_compile=jit_compile, weights_channels=weights_channels, recipe=recipe,
                    regularization=regularization, warmup_epochs=warmup_epochs), verbose=verbose)
