"""Planning a training run: a :class:`~keras_convnets.training.train_config.TrainConfig` checked field by field and
resolved against the model's paper recipe, the dataset and the output directory into a :class:`RunPlan`, before
TensorFlow does any work (:func:`plan`). Also what a run directory's ``run.json`` says and whether a run may start
there (:func:`check_out_dir`). :mod:`keras_convnets.training.loop` runs the plan.
"""

import dataclasses
import json
import math
import os
from typing import Any, Dict, Optional, Tuple

from keras_convnets import checks
from keras_convnets.training import datasets, distribute, lock, performance, recipes
from keras_convnets.training.train_config import TrainConfig, config_from

#: ``precision`` values (:func:`keras_convnets.training.performance.choose_precision` says what each computes where).
PRECISIONS = performance.PRECISIONS
RUN_FILE = "run.json"


class RunMismatchError(ValueError):
    """The output directory holds a different run."""


class RunCompleteError(ValueError):
    """The output directory holds this very run, complete: training it again needs ``force``."""


#: The largest seed TensorFlow and NumPy accept.
MAX_SEED = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A run with every default resolved and every argument checked, before TensorFlow does any work.

    ``config``: the :class:`~keras_convnets.training.train_config.TrainConfig` as checked, its dataset, weights,
    data directory and output directory resolved (absolute paths); the rest is what ``plan`` derived from it:
    the model's registry entry, the data's description, the recipe, the factory options and the regularization.
    ``reference_batch_size``: the paper's batch, which ``scale_lr`` scales the rate against."""

    config: TrainConfig
    info: Any
    spec: datasets.DatasetDescription
    recipe: recipes.Recipe
    model_kwargs: Dict[str, Any]
    regularization: recipes.Regularization
    reference_batch_size: int

    @property
    def out(self) -> str:
        return self.config.out

    @property
    def freeze_epochs(self) -> int:
        return self.config.freeze_backbone or 0

    @property
    def arguments(self) -> Dict[str, Any]:
        """What identifies the run in ``run.json`` (the strategy, data directory and runtime settings may change on
        resumption; ``batch_size`` is per replica)."""
        c, r = self.config, self.recipe
        extra = _given(steps_per_epoch=c.steps_per_epoch, scale_lr=c.scale_lr or None, image_size=c.image_size,
                       weights=c.weights, weights_channels=c.weights_channels, freeze_backbone=c.freeze_backbone,
                       recipe=None if c.recipe == "paper" else c.recipe, warmup_epochs=r.warmup_epochs or None,
                       regularization=self.regularization.to_json() or None)
        # the papers' runs record what they always did: their run.json still matches
        return {"model": self.info.name, "dataset": self.spec.name, "epochs": r.epochs, "batch_size": r.batch_size,
                "lr": r.lr, "weight_decay": r.weight_decay, "schedule": r.schedule, "boundaries": list(r.boundaries),
                "factor": r.factor, "momentum": r.momentum, "nesterov": r.nesterov,
                "warmup_fraction": r.warmup_fraction, "warmup_lr": r.warmup_lr, "augmentation": self.spec.augment,
                "precision": c.precision, "seed": c.seed, "model_kwargs": self.model_kwargs, **extra}

    def global_batch_size(self, replicas: int) -> int:
        """The batch one optimizer step sees: the per-replica batch times the replicas."""
        return self.recipe.batch_size * replicas

    def scaled_recipe(self, replicas: int) -> recipes.Recipe:
        """The recipe with its learning rates scaled linearly by global batch / the paper's batch when
        ``scale_lr`` (Goyal et al. 2017), else unchanged."""
        if not self.config.scale_lr:
            return self.recipe
        factor = self.global_batch_size(replicas) / self.reference_batch_size
        return dataclasses.replace(self.recipe, lr=self.recipe.lr * factor, warmup_lr=self.recipe.warmup_lr * factor)


def _given(**values) -> Dict[str, Any]:
    """The keyword arguments that are not None (the ones the user gave)."""
    return {key: value for key, value in values.items() if value is not None}


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


def _check_choices(config: TrainConfig) -> None:
    """The fields that name one of a few choices, and the numbers a recipe does not resolve (one-line ValueErrors)."""
    if not isinstance(config.dataset, (str, os.PathLike)):
        raise ValueError(f"dataset must be a tfds name or a folder path; got {config.dataset!r}")
    checks.one_of("weights_channels", config.weights_channels, (None, *datasets.CHANNEL_ORDERS))
    if config.image_size is not None:
        checks.integer_in("image_size", config.image_size, 8, 4096)
    checks.one_of("precision", config.precision, PRECISIONS)
    if config.strategy not in distribute.STRATEGIES:
        raise distribute.StrategyError(f"unknown strategy {config.strategy!r}; known strategies: "
                                       f"{', '.join(distribute.STRATEGIES)}")
    if distribute.needs_legacy_keras(config.strategy):
        distribute.check_keras_for_multi_worker()
    checks.one_of("recipe (--recipe)", config.recipe, recipes.RECIPES)
    _check_regularization(config.regularization)  # each option's value, before any data is read
    checks.integer_in("seed", config.seed, 0, MAX_SEED)
    for name in ("steps_per_epoch", "steps_per_execution"):
        if getattr(config, name) is not None:
            checks.positive_int(name, getattr(config, name))
    checks.one_of("augmentation (None: the dataset's usual setting)", config.augmentation, (None, True, False))
    checks.one_of("jit_compile (None: the machine's choice)", config.jit_compile, (None, True, False))


def _checked(config: TrainConfig, info) -> TrainConfig:
    """``config`` checked field by field, with its weights, data directory and output directory resolved."""
    weights, freeze_epochs = _check_weights(info, config.weights, config.freeze_backbone)
    if config.weights_channels is not None and weights is None:
        raise ValueError("weights_channels (--weights-channels) says which channel order pretrained weights take: it "
                         "needs weights (--weights imagenet|PATH)")
    _check_choices(config)
    dataset = os.fspath(config.dataset)
    out = config.out or os.path.join("runs", f"{info.name}_{os.path.basename(dataset.rstrip('/'))}")
    return dataclasses.replace(config, dataset=dataset, weights=weights, freeze_backbone=freeze_epochs or None,
                               data_dir=datasets.resolve_data_dir(config.data_dir), out=os.path.abspath(out),
                               scale_lr=bool(config.scale_lr), force=bool(config.force))


def _resolved_recipe(config: TrainConfig, info) -> Tuple[recipes.Recipe, int]:
    """The paper's recipe for ``info`` (or the fine-tuning one), made modern if asked, with the given fields
    overriding it, checked; and the paper's batch size (what ``scale_lr`` scales against)."""
    paper = recipes.recipe_for(info, pretrained=config.weights is not None)
    recipe = dataclasses.replace(paper, **_given(epochs=config.epochs, batch_size=config.batch_size))
    checks.positive_int("epochs", recipe.epochs)
    checks.positive_int("batch_size", recipe.batch_size)
    if config.recipe == "modern":
        recipe = recipes.modern_recipe(recipe)
        if config.schedule == "piecewise":  # the paper's boundaries, asked for by name
            recipe = dataclasses.replace(recipe, schedule="piecewise", boundaries=paper.boundaries)
    recipe = recipes.parse_schedule(config.schedule, recipe)
    recipe = dataclasses.replace(recipe, **_given(lr=config.lr, weight_decay=config.weight_decay,
                                                  warmup_epochs=config.warmup_epochs))
    checks.number_in("lr", recipe.lr, 0.0, low_open=True)
    checks.number_in("weight_decay", recipe.weight_decay, 0.0)
    checks.number_in("warmup_epochs (--warmup-epochs)", recipe.warmup_epochs, 0.0, float(recipe.epochs))
    return recipe, paper.batch_size


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


def _run_data(config: TrainConfig, info) -> datasets.DatasetDescription:
    """The run's data described, normalized as a resumed run recorded, else as the pretrained weights expect."""
    statistics = _recorded_statistics(config.out, config.dataset)
    if statistics is None and config.weights is not None:
        statistics = datasets.pretrained_statistics(info.name, config.weights, config.weights_channels)
    return describe_dataset(info, config.dataset, image_size=config.image_size, augmentation=config.augmentation,
                            pretrained=config.weights is not None, statistics=statistics, data_dir=config.data_dir)


def plan(config, dataset=None, **options) -> RunPlan:
    """Resolves a run's arguments against the model's recipe and checks them (ValueError with a one-line reason:
    unknown model, dataset or strategy, multi-worker without tf-keras, dataset not prepared or not a folder of class
    folders, weights the model does not have, bad numbers, ``out`` not a writable directory, holding a different
    run, or this run complete and ``force`` not given).

    ``config``: a :class:`~keras_convnets.training.train_config.TrainConfig`, or a model name with ``dataset`` and
    the config's fields as keywords (``plan("resnet20", epochs=3)``). ``recipe="modern"`` starts from torchvision's
    v2 recipe scaled to the epochs (:func:`keras_convnets.training.recipes.modern_recipe`, ``modern_regularization``);
    the explicit fields override either. ``regularization``: a
    :class:`~keras_convnets.training.recipes.Regularization` (used as given), or a mapping of some of its fields
    overriding the recipe's (the command line's flags)."""
    config = config_from(config, dataset, options)  # a misspelt option fails before TensorFlow is imported
    from keras_convnets.models import registry

    info = registry.model_info(config.model)
    config = _checked(config, info)
    recipe, reference_batch_size = _resolved_recipe(config, info)
    spec = _run_data(config, info)
    total_steps = planned_steps(spec.train.count, recipe.batch_size, config.steps_per_epoch) * recipe.epochs
    run_plan = RunPlan(config, info, spec, recipe,
                       model_kwargs={**recipe.model_kwargs(spec.augment), **(config.model_kwargs or {})},
                       regularization=_regularization(config.recipe, recipe, config.regularization, total_steps),
                       reference_batch_size=reference_batch_size)
    if not distribute.needs_legacy_keras(config.strategy) or distribute.is_chief_task():
        # other workers write nothing in out but their backup
        check_out_dir(run_plan.out, run_plan.arguments, config.force)
    return run_plan


def planned_steps(count: int, batch_size: int, steps_per_epoch: Optional[int] = None) -> int:
    """Optimizer steps per epoch: ``count`` training images over the batch, capped by ``steps_per_epoch``."""
    steps = math.ceil(count / batch_size)
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
    (the papers': none) with the fields of a ``given`` mapping replaced: the one place the API's and the command
    line's options are combined. An EMA turned on by a mapping follows the weights during the recipe's warm-up
    unless the mapping says otherwise; a RandAugment replaces the recipe's TrivialAugment unless the mapping asks
    for both (then refused: one policy). The EMA decay of the modern recipe is
    planned for one replica (``total_steps``)."""
    if isinstance(given, recipes.Regularization):
        return given
    base = recipes.modern_regularization(recipe, total_steps) if recipe_name == "modern" \
        else recipes.Regularization()
    given = dict(given or {})
    if given.get("ema") and "ema_warmup_steps" not in given:
        given["ema_warmup_steps"] = recipes.warmup_steps(recipe, total_steps)
    if given.get("randaugment") and "trivialaugment" not in given:
        given["trivialaugment"] = False  # RandAugment replaces the modern recipe's TrivialAugment (one policy)
    return dataclasses.replace(base, **given)


def describe_dataset(info, dataset, *, image_size=None, augmentation=None, pretrained=False, statistics=None,
                     data_dir=None) -> datasets.DatasetDescription:
    """The run's :class:`~keras_convnets.training.datasets.DatasetDescription`: a CIFAR-family name at its own size
    by default (today's pipeline; downloaded by tfds when missing and reachable), anything else at ``image_size``,
    default the model's input size. ``augmentation`` False: none; True: the size's usual kind even where the dataset
    usually has none (SVHN); None: the dataset's usual setting. ``pretrained``: normalize as the model's ImageNet
    weights expect (:func:`keras_convnets.training.datasets.imagenet_statistics`)."""
    if dataset in datasets.DATASETS:
        datasets.dataset_info(dataset, data_dir, download=True)  # downloads, or says how to point at a copy
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


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_run_record(out) -> Optional[Dict[str, Any]]:
    """``OUT/run.json`` as a dict, None when there is none; a RunMismatchError when it is not a JSON object."""
    run_file = os.path.join(out, RUN_FILE)
    if not os.path.exists(run_file):
        return None
    try:
        record = read_json(run_file)
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


def _differences(recorded: dict, wanted: dict, prefix: str = "", shown: int = 3) -> str:
    """What differs between ``run.json``'s arguments and this run's, field by field (into nested records such as
    ``regularization``): ``"regularization.ema: 0.99 in run.json, 0.9 now"``; the first ``shown`` of them."""
    lines = []
    for key in sorted(set(recorded) | set(wanted)):
        old, new = recorded.get(key), wanted.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            lines.append(_differences(old, new, f"{prefix}{key}.", shown))
        else:
            lines.append(f"{prefix}{key}: {'absent' if key not in recorded else repr(old)} in {RUN_FILE}, "
                         f"{'absent' if key not in wanted else repr(new)} now")
    more = f"; and {len(lines) - shown} more" if len(lines) > shown else ""
    return "; ".join(lines[:shown]) + more


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
            differ = _differences(recorded or {}, wanted)
            raise RunMismatchError(f"output directory {out} holds a different run ({differ}); choose another --out "
                                   "or delete it")
        if record.get("status") == "complete" and not force:
            accuracy = record.get("test_accuracy")
            score = f" (test accuracy {accuracy:.4f})" if isinstance(accuracy, float) else ""
            raise RunCompleteError(f"the run in {out} is complete{score}; pass --force (force=True) to train it "
                                   "again, or choose another --out")
    elif os.path.isdir(out) and [name for name in os.listdir(out) if name != lock.LOCK_FILE]:
        raise RunMismatchError(f"output directory {out} is not empty and holds no {RUN_FILE}; choose another --out")
