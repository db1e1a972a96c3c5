"""Planning a training run: a :class:`~keras_convnets.training.config.TrainConfig` checked field by field and
resolved against the model's paper recipe, the dataset and the output directory into a :class:`RunPlan`, before
TensorFlow does any work (:func:`plan`); and the step counts every part of the run shares, once the replicas are
known (:meth:`RunPlan.schedule`). :mod:`keras_convnets.training.loop` runs the plan.
"""

import dataclasses
import math
import os
from typing import Any, Dict, Optional, Tuple

from keras_convnets import checks
from keras_convnets.data import catalog
from keras_convnets.run_directory import RunCompleteError, RunDirectory, RunMismatchError  # noqa: F401 (plan's errors)
from keras_convnets.runtime import distribute
from keras_convnets.runtime.precision import PRECISIONS
from keras_convnets.training import recipes
from keras_convnets.training.config import TrainConfig, config_from

#: The largest seed TensorFlow and NumPy accept.
MAX_SEED = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A run with every default resolved and every argument checked, before TensorFlow does any work.

    ``config``: the :class:`~keras_convnets.training.config.TrainConfig` as checked, its dataset, weights,
    data directory and output directory resolved (absolute paths); the rest is what ``plan`` derived from it:
    the model's registry entry, the data's description, the recipe, the factory options and the regularization.
    ``reference_batch_size``: the paper's batch, which ``scale_lr`` scales the rate against. ``fine_tune``: the run
    starts from pretrained weights (a new head, the fine-tuning recipe, the weights' input normalization)."""

    config: TrainConfig
    info: Any
    spec: catalog.DatasetDescription
    recipe: recipes.Recipe
    model_kwargs: Dict[str, Any]
    regularization: recipes.Regularization
    reference_batch_size: int
    fine_tune: bool

    @property
    def out(self) -> str:
        return self.config.out

    @property
    def directory(self) -> RunDirectory:
        """The run directory ``OUT`` (:class:`keras_convnets.run_directory.RunDirectory`)."""
        return RunDirectory(self.config.out)

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

    def schedule(self, replicas: int, whole_batches: bool = False) -> "Schedule":
        """The step counts of the run on ``replicas`` replicas, from the global batch: what the learning-rate
        schedule, the EMA and ``fit`` all count (:class:`Schedule`). ``whole_batches``: every step takes a whole
        global batch, an epoch's last partial one is dropped (Keras on JAX:
        :func:`keras_convnets.runtime.distribute.needs_whole_batches`)."""
        steps = planned_steps(self.spec.train.count, self.global_batch_size(replicas), self.config.steps_per_epoch,
                              whole_batches)
        total = steps * self.recipe.epochs
        warmup = recipes.warmup_steps(self.recipe, total)
        options = self.regularization
        decay = recipes.ema_decay(total, options.ema_horizon) if options.ema_horizon else options.ema
        ema_warmup = warmup if options.ema_warmup_steps is None else options.ema_warmup_steps
        return Schedule(steps, total, warmup, decay, ema_warmup if decay else 0)

    def scaled_recipe(self, replicas: int) -> recipes.Recipe:
        """The recipe with its learning rates scaled linearly by global batch / the paper's batch when
        ``scale_lr`` (Goyal et al. 2017), else unchanged."""
        if not self.config.scale_lr:
            return self.recipe
        factor = self.global_batch_size(replicas) / self.reference_batch_size
        return dataclasses.replace(self.recipe, lr=self.recipe.lr * factor, warmup_lr=self.recipe.warmup_lr * factor)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The step counts of a run on its replicas, worked out once (:meth:`RunPlan.schedule`) and shared:
    ``steps_per_epoch`` (the training images over the global batch, capped by ``steps_per_epoch``), the recipe's
    ``total_steps``, the learning rate's ``warmup_steps``, and the EMA's per-step ``ema_decay`` (0: none; the modern
    recipe's from its horizon over the total steps) and ``ema_warmup_steps`` (the learning rate's unless given)."""

    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    ema_decay: float
    ema_warmup_steps: int


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


#: The Keras backends training runs on.
TRAINING_BACKENDS = ("tensorflow", "jax")


def backend_refusal(backend: str) -> Optional[str]:
    """Why training does not run on the Keras backend ``backend`` (one line), or None where it does."""
    if backend in TRAINING_BACKENDS:
        return None
    models = "; the models themselves build, predict and fit on torch" if backend == "torch" else ""
    return (f"training runs on the tensorflow and jax backends; this process runs Keras on {backend} "
            f"(KERAS_BACKEND=jax or tensorflow selects one){models}")


def _check_backend() -> None:
    """A one-line ValueError unless this process's Keras backend is one training runs on (PyTorch is not: Keras'
    torch trainer runs our models op by op, at 0.05x TensorFlow's train-step images/s on CPU (README, "Backends"),
    and it has no data-parallel engine that this package drives)."""
    from keras_convnets.models.backend import BACKEND

    refusal = backend_refusal(BACKEND)
    if refusal:
        raise ValueError(refusal)


def _check_choices(config: TrainConfig) -> None:
    """The fields that name one of a few choices, and the numbers a recipe does not resolve (one-line ValueErrors)."""
    if not isinstance(config.dataset, (str, os.PathLike)):
        raise ValueError(f"dataset must be a tfds name or a folder path; got {config.dataset!r}")
    checks.one_of("weights_channels", config.weights_channels, (None, *catalog.CHANNEL_ORDERS))
    if config.image_size is not None:
        checks.integer_in("image_size", config.image_size, 8, 4096)
    checks.one_of("precision", config.precision, PRECISIONS)
    if config.strategy not in distribute.STRATEGIES:
        raise distribute.StrategyError(f"unknown strategy {config.strategy!r}; known strategies: "
                                       f"{', '.join(distribute.STRATEGIES)}")
    distribute.check_backend(config.strategy)  # before tf-keras is asked for: multi-worker on JAX is refused
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
                               data_dir=catalog.resolve_data_dir(config.data_dir), out=os.path.abspath(out),
                               scale_lr=bool(config.scale_lr), force=bool(config.force))


def _resolved_recipe(config: TrainConfig, info, fine_tune: bool) -> Tuple[recipes.Recipe, int]:
    """The paper's recipe for ``info`` (or the fine-tuning one), made modern if asked, with the given fields
    overriding it, checked; and the paper's batch size (what ``scale_lr`` scales against)."""
    paper = recipes.recipe_for(info, pretrained=fine_tune)
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


def _run_data(config: TrainConfig, info, fine_tune: bool) -> catalog.DatasetDescription:
    """The run's data described, normalized as a resumed run recorded, else as the pretrained weights expect."""
    statistics = RunDirectory(config.out).recorded_statistics(config.dataset)
    if statistics is None and fine_tune:
        statistics = catalog.pretrained_statistics(info.name, config.weights, config.weights_channels)
    return describe_dataset(info, config.dataset, image_size=config.image_size, augmentation=config.augmentation,
                            pretrained=fine_tune, statistics=statistics, data_dir=config.data_dir)


def plan(config, dataset=None, **options) -> RunPlan:
    """Resolves a run's arguments against the model's recipe and checks them (ValueError with a one-line reason:
    unknown model, dataset or strategy, multi-worker without tf-keras, dataset not prepared or not a folder of class
    folders, weights the model does not have, bad numbers, ``out`` not a writable directory, holding a different
    run, or this run complete and ``force`` not given).

    ``config``: a :class:`~keras_convnets.training.config.TrainConfig`, or a model name with ``dataset`` and
    the config's fields as keywords (``plan("resnet20", epochs=3)``). ``recipe="modern"`` starts from torchvision's
    v2 recipe scaled to the epochs (:func:`keras_convnets.training.recipes.modern_recipe`, ``modern_regularization``);
    the explicit fields override either. ``regularization``: a
    :class:`~keras_convnets.training.recipes.Regularization` (used as given), or a mapping of some of its fields
    overriding the recipe's (the command line's flags)."""
    config = config_from(config, dataset, options)  # a misspelt option fails before TensorFlow is imported
    _check_backend()
    from keras_convnets.models import registry

    info = registry.model_info(config.model)
    config = _checked(config, info)
    fine_tune = config.weights is not None
    recipe, reference_batch_size = _resolved_recipe(config, info, fine_tune)
    spec = _run_data(config, info, fine_tune)
    run_plan = RunPlan(config, info, spec, recipe,
                       model_kwargs={**recipe.model_kwargs(spec.augment), **(config.model_kwargs or {})},
                       regularization=regularization(config.recipe, config.regularization),
                       reference_batch_size=reference_batch_size, fine_tune=fine_tune)
    if not distribute.needs_legacy_keras(config.strategy) or distribute.is_chief_task():
        # other workers write nothing in out but their backup
        run_plan.directory.check(run_plan.arguments, config.force)
    return run_plan


def planned_steps(count: int, batch_size: int, steps_per_epoch: Optional[int] = None,
                  whole_batches: bool = False) -> int:
    """Optimizer steps per epoch: ``count`` training images over the batch (rounded down with ``whole_batches``:
    no partial last batch), capped by ``steps_per_epoch``. A ValueError when no whole batch fits."""
    steps = count // batch_size if whole_batches else math.ceil(count / batch_size)
    if steps == 0:
        raise ValueError(f"batch_size: the global batch of {batch_size} exceeds the {count} training images, and on "
                         "Keras' JAX backend every step takes a whole batch; lower --batch-size")
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


def regularization(recipe_name: str, given) -> recipes.Regularization:
    """A run's :class:`~keras_convnets.training.recipes.Regularization`, the one place the API's and the command
    line's options are combined: ``given`` as is, or the named recipe's (the papers': none) with the fields of a
    ``given`` mapping replaced. A decay given (``ema``) replaces the modern recipe's horizon; a RandAugment replaces
    its TrivialAugment unless the mapping asks for both (then refused: one policy). The EMA follows the weights
    during the learning-rate warm-up unless ``ema_warmup_steps`` is given (:meth:`RunPlan.schedule`)."""
    if isinstance(given, recipes.Regularization):
        return given
    base = recipes.modern_regularization() if recipe_name == "modern" else recipes.Regularization()
    given = dict(given or {})
    if "ema" in given and "ema_horizon" not in given:
        given["ema_horizon"] = 0.0
    if given.get("randaugment") and "trivialaugment" not in given:
        given["trivialaugment"] = False
    return dataclasses.replace(base, **given)


def describe_dataset(info, dataset, *, image_size=None, augmentation=None, pretrained=False, statistics=None,
                     data_dir=None) -> catalog.DatasetDescription:
    """The run's :class:`~keras_convnets.data.catalog.DatasetDescription`: a CIFAR-family name at its own size
    by default (today's pipeline; downloaded by tfds when missing and reachable), anything else at ``image_size``,
    default the model's input size. ``augmentation`` False: none; True: the size's usual kind even where the dataset
    usually has none (SVHN); None: the dataset's usual setting. ``pretrained``: normalize as the model's ImageNet
    weights expect (:func:`keras_convnets.data.catalog.imagenet_statistics`)."""
    if dataset in catalog.DATASETS:
        catalog.dataset_info(dataset, data_dir, download=True)  # downloads, or says how to point at a copy
    elif image_size is None:
        image_size = info.input_size
    kind = "none" if augmentation is False else None
    description = catalog.describe(dataset, image_size=image_size, augmentation=kind,
                                    pretrained=info.name if pretrained else None, statistics=statistics,
                                    data_dir=data_dir)
    if augmentation and not description.augment:
        description = catalog.describe(dataset, image_size=image_size, augmentation="cifar"
                                        if description.image_size <= 32 else "imagenet",
                                        statistics=description.statistics, data_dir=data_dir)
    return description
