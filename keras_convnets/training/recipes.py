"""The papers' training recipes, one per registry family, and the learning-rate schedules they use.

Schedules are given as fractions of training (ResNet's 32k/48k of 64k iterations become 0.5 / 0.75), so a run
shortened with ``epochs=`` keeps the paper's shape. Weight decay is the papers' coupled L2 in PyTorch's convention,
passed to the model factory (``weight_decay=``), never the optimizer's decoupled ``weight_decay``.
"""

import dataclasses
from typing import Optional, Tuple

from keras_convnets import checks

#: Schedule names accepted by ``schedule=`` (besides explicit boundaries such as ``"0.3,0.6,0.8"``).
SCHEDULES = ("piecewise", "cosine", "constant")
#: Named recipes (``recipe=``, ``--recipe``): the papers' (per family, today's behaviour) or the modern one.
RECIPES = ("paper", "modern")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """SGD with momentum, a learning-rate schedule and the model options of one paper.

    ``boundaries``: fractions of training at which the rate is multiplied by ``factor`` (piecewise schedule).
    ``warmup_fraction``/``warmup_lr``: train at ``warmup_lr`` for that fraction of training first (He et al.'s
    0.01 for 400 of 64k iterations). ``warmup_epochs``: a linear warm-up from ``lr / steps`` to ``lr`` over that
    many epochs, then the schedule over the remaining steps (Goyal et al. 2017; torchvision's
    ``--lr-warmup-epochs``); any schedule takes it. ``dropout``: the factory's dropout with augmentation;
    ``dropout_without_augmentation``: with none (DenseNet's 0.2).
    """

    source: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    boundaries: Tuple[float, ...]
    factor: float = 0.1
    schedule: str = "piecewise"
    momentum: float = 0.9
    nesterov: bool = False
    warmup_fraction: float = 0.0
    warmup_lr: float = 0.0
    dropout: float = 0.0
    dropout_without_augmentation: Optional[float] = None
    warmup_epochs: float = 0.0

    def model_kwargs(self, augmentation: bool) -> dict:
        """The factory options the recipe implies (only the non-default ones, as not every factory takes them)."""
        rate = self.dropout if augmentation or self.dropout_without_augmentation is None \
            else self.dropout_without_augmentation
        return {"dropout": rate} if rate else {}


_HE_WARMUP = dict(warmup_fraction=400 / 64_000, warmup_lr=0.01)

#: He et al. 2016 (CIFAR): batch 128, lr 0.1 ÷10 at 32k and 48k of 64k iterations (~164 epochs), wd 1e-4.
RESNET_CIFAR = Recipe("He et al. 2016, §4.2", epochs=164, batch_size=128, lr=0.1, weight_decay=1e-4,
                      boundaries=(0.5, 0.75))
#: ResNet-110 and -1202: the same after warming up at 0.01 for 400 iterations.
RESNET_CIFAR_DEEP = dataclasses.replace(RESNET_CIFAR, **_HE_WARMUP)
#: He et al. 2016b (identity mappings): the CIFAR ResNet recipe, warm-up for every depth.
PREACT_CIFAR = dataclasses.replace(RESNET_CIFAR, source="He et al. 2016b, appendix", **_HE_WARMUP)
#: Zagoruyko & Komodakis 2016: batch 128, 200 epochs, lr 0.1 ×0.2 at 60/120/160, wd 5e-4, Nesterov, dropout 0.3.
WRN_CIFAR = Recipe("Zagoruyko & Komodakis 2016, §3", epochs=200, batch_size=128, lr=0.1, weight_decay=5e-4,
                   boundaries=(0.3, 0.6, 0.8), factor=0.2, nesterov=True, dropout=0.3)
#: Xie et al. 2017: batch 128, 300 epochs, lr 0.1 ÷10 at 150 and 225, wd 5e-4 (Nesterov, as its fb.resnet.torch code).
RESNEXT_CIFAR = Recipe("Xie et al. 2017, §5.3", epochs=300, batch_size=128, lr=0.1, weight_decay=5e-4,
                       boundaries=(0.5, 0.75), nesterov=True)
#: Huang et al. 2017: batch 64, 300 epochs, lr 0.1 ÷10 at 50% and 75%, wd 1e-4, Nesterov; dropout 0.2 only
#: without data augmentation.
DENSENET_CIFAR = Recipe("Huang et al. 2017, §4.2", epochs=300, batch_size=64, lr=0.1, weight_decay=1e-4,
                        boundaries=(0.5, 0.75), nesterov=True, dropout_without_augmentation=0.2)
#: ImageNet (He et al. 2016; DenseNet the same with Nesterov): batch 256, 90 epochs, lr 0.1 ÷10 at 30 and 60, wd 1e-4.
IMAGENET = Recipe("He et al. 2016, §3.4", epochs=90, batch_size=256, lr=0.1, weight_decay=1e-4,
                  boundaries=(1 / 3, 2 / 3))

#: Fine-tuning pretrained ImageNet weights on a new dataset (ours; no paper fixes one recipe: Li et al. 2020,
#: "Rethinking the hyperparameters for fine-tuning", find the best rate depends on the dataset and is below the
#: from-scratch one). The ImageNet recipe's rate, 0.1 at batch 256, scaled linearly to batch 64 (Goyal et al. 2017)
#: is 0.025; a tenth of it, 0.0025, for the pretrained layers (the Keras transfer-learning guide: "a very low
#: learning rate"). A short cosine decay to 0 (Loshchilov & Hutter 2017) over 10 epochs, no warm-up (the weights are
#: already trained: a warm-up protects random ones), Nesterov momentum 0.9, the ImageNet recipe's weight decay.
FINE_TUNE = Recipe("ours: a tenth of the ImageNet rate at batch 64, short cosine (see recipes.FINE_TUNE)", epochs=10,
                   batch_size=64, lr=0.0025, weight_decay=1e-4, boundaries=(), schedule="cosine", nesterov=True)
#: The optional first phase on a frozen backbone (``--freeze-backbone``): only the new, randomly initialized
#: classifier trains, so at the from-scratch rate scaled to the batch (0.025), for 2 epochs. The frozen backbone's
#: BatchNorm layers run in inference mode (Keras: ``trainable = False`` on a BatchNormalization layer does so).
FINE_TUNE_HEAD = dataclasses.replace(FINE_TUNE, source="ours: the ImageNet rate scaled to batch 64, head only",
                                     epochs=2, lr=0.025)

_CIFAR = {"resnet": RESNET_CIFAR, "preact_resnet": PREACT_CIFAR, "wrn": WRN_CIFAR, "resnext": RESNEXT_CIFAR,
          "densenet": DENSENET_CIFAR}


def recipe_for(info, pretrained: bool = False) -> Recipe:
    """The recipe a registered model trains with.

    Args:
        info: its :class:`keras_convnets.models.registry.ModelInfo` (the family and dataset decide).
        pretrained: the run starts from pretrained weights (then :data:`FINE_TUNE`).

    Returns:
        The family's paper :class:`Recipe` (He et al.'s warm-up for the models registered with it).
    """
    if pretrained:
        return FINE_TUNE
    if info.dataset == "imagenet":
        return dataclasses.replace(IMAGENET, nesterov=info.family == "densenet")
    if info.warmup:  # registered with the model (He et al.'s ResNet-110 and -1202)
        return RESNET_CIFAR_DEEP
    return _CIFAR[info.family]


def parse_schedule(schedule: Optional[str], recipe: Recipe) -> Recipe:
    """``recipe`` with its schedule overridden: ``piecewise`` (the paper's), ``cosine``, ``constant``, or
    comma-separated boundary fractions such as ``"0.3,0.6,0.8"`` (piecewise, the recipe's factor)."""
    if schedule is None or schedule == "piecewise":
        return recipe
    if schedule in SCHEDULES:
        return dataclasses.replace(recipe, schedule=schedule)
    try:
        boundaries = tuple(float(part) for part in schedule.split(","))
    except ValueError:
        boundaries = ()
    if not boundaries or any(not 0 < b < 1 for b in boundaries) or list(boundaries) != sorted(set(boundaries)):
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)} or increasing fractions of training in "
                         f"(0, 1) such as '0.5,0.75'; got {schedule!r}")
    return dataclasses.replace(recipe, schedule="piecewise", boundaries=boundaries)


def warmup_steps(recipe: Recipe, total_steps: int) -> int:
    """The optimizer steps of the recipe's linear warm-up (``warmup_epochs`` as a share of ``epochs``), at least 1 when
    it has one, at most ``total_steps``."""
    if not recipe.warmup_epochs:
        return 0
    return min(total_steps, max(1, round(recipe.warmup_epochs / recipe.epochs * total_steps)))


def learning_rate(recipe: Recipe, total_steps: int):
    """The Keras learning-rate schedule of ``recipe`` over ``total_steps`` optimizer steps: with ``warmup_epochs``,
    ``lr * (step + 1) / W`` for the first ``W`` steps (:func:`warmup_steps`), then the schedule run over the
    remaining ``total_steps - W`` steps, as torchvision's ``SequentialLR`` does."""
    warmup = warmup_steps(recipe, total_steps)
    main = _schedule(recipe, max(1, total_steps - warmup))
    if not warmup:
        return main
    return _linear_warmup_class()(main, warmup, recipe.lr)


def _linear_warmup_class():
    from keras_convnets.models.backend import KERAS_3, keras

    if KERAS_3:
        ops = keras.ops  # the schedule runs inside the compiled train step of any backend (JAX's too)
    else:
        import tensorflow as ops  # tf-keras has no keras.ops; it runs on TensorFlow only

    class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
        """``peak * (step + 1) / warmup_steps`` for ``step < warmup_steps``, then ``after(step - warmup_steps)``."""

        def __init__(self, after, warmup_steps, peak):
            super().__init__()
            self.after, self.warmup_steps, self.peak = after, int(warmup_steps), float(peak)

        def __call__(self, step):
            step = ops.cast(step, "float32")
            warm = self.peak * (step + 1.0) / self.warmup_steps
            shifted = step - self.warmup_steps
            after = self.after(shifted) if callable(self.after) else self.after
            return ops.where(step < self.warmup_steps, warm, ops.cast(after, "float32"))

        def get_config(self):
            after = self.after if not callable(self.after) else keras.optimizers.schedules.serialize(self.after)
            return {"after": after, "warmup_steps": self.warmup_steps, "peak": self.peak}

    return LinearWarmup


def _schedule(recipe: Recipe, total_steps: int):
    """The recipe's schedule (and He et al.'s constant warm-up) over ``total_steps`` optimizer steps."""
    from keras_convnets.models.backend import keras

    schedules = keras.optimizers.schedules
    warmup = max(1, round(recipe.warmup_fraction * total_steps)) if recipe.warmup_fraction else 0
    if recipe.schedule == "cosine":
        if warmup:
            return schedules.CosineDecay(recipe.warmup_lr, max(1, total_steps - warmup), warmup_target=recipe.lr,
                                         warmup_steps=warmup)
        return schedules.CosineDecay(recipe.lr, max(1, total_steps))
    boundaries = [round(b * total_steps) for b in recipe.boundaries] if recipe.schedule == "piecewise" else []
    values = [recipe.lr * recipe.factor ** i for i in range(len(boundaries) + 1)]
    if warmup:
        boundaries, values = [warmup] + boundaries, [recipe.warmup_lr] + values
    # Boundaries that coincide after rounding (very short runs) would make the schedule ill-defined: keep the last.
    steps, rates = [], [values[0]]
    for boundary, value in zip(boundaries, values[1:]):
        if steps and boundary <= steps[-1]:
            rates[-1] = value
        else:
            steps.append(boundary)
            rates.append(value)
    return schedules.PiecewiseConstantDecay(steps, rates) if steps else float(rates[0])


def optimizer(recipe: Recipe, total_steps: int):
    """SGD with the recipe's momentum, Nesterov flag and schedule (no decoupled weight decay)."""
    from keras_convnets.models.backend import keras

    return keras.optimizers.SGD(learning_rate=learning_rate(recipe, total_steps), momentum=recipe.momentum,
                                nesterov=recipe.nesterov)


@dataclasses.dataclass(frozen=True)
class Regularization:
    """The modern training options, each off by default (the papers' recipes use none of them); ``train(...,
    regularization=Regularization(mixup=0.2))`` or the command's flags. All compose.

    ``label_smoothing``: the targets' share spread over all classes (Szegedy et al. 2016), in [0, 1).
    ``mixup`` / ``cutmix``: the Beta distribution's alpha (0: off); with both, one of them per batch
    (:func:`keras_convnets.data.augment.mix_batch`). ``randaugment``: ``(N, M)``, N ops at magnitude bin M of
    0-30; ``trivialaugment``: TrivialAugmentWide (at most one of the two). ``random_erasing``: the probability an
    image gets a box erased. ``ema``: the decay per optimizer step of an exponential moving average of the weights
    and BN statistics used for evaluation and the export (0: off; :mod:`keras_convnets.training.ema`);
    ``ema_horizon``: instead, the average's time constant as a share of the run's optimizer steps (the modern
    recipe's torchvision horizon, :data:`EMA_HORIZON`), whose decay the run works out from its steps on its replicas.
    ``ema_warmup_steps``: the average follows the weights for that many first steps (None: the learning rate's
    warm-up, as torchvision restarts it there).

    Any of label smoothing, mixup and cutmix makes the labels soft (one-hot, mixed): the loss is then
    ``CategoricalCrossentropy(label_smoothing=...)`` and the evaluation labels one-hot too; without them the labels
    stay sparse and the loss is the papers' ``SparseCategoricalCrossentropy``.
    """

    label_smoothing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    randaugment: Optional[Tuple[int, int]] = None
    trivialaugment: bool = False
    random_erasing: float = 0.0
    ema: float = 0.0
    ema_horizon: float = 0.0
    ema_warmup_steps: Optional[int] = None

    def __post_init__(self):
        checks.number_in("label_smoothing (--label-smoothing)", self.label_smoothing, 0.0, 1.0, high_open=True)
        checks.number_in("mixup (--mixup)", self.mixup, 0.0)
        checks.number_in("cutmix (--cutmix)", self.cutmix, 0.0)
        if self.randaugment is not None:
            pair = self.randaugment
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in pair)
                    and 1 <= pair[0] <= 16 and 0 <= pair[1] <= 30):
                checks.fail("randaugment (--randaugment N,M)",
                            "(N, M): N ops in [1, 16] at magnitude bin M in [0, 30], e.g. (2, 9)", pair)
            object.__setattr__(self, "randaugment", tuple(pair))
        checks.one_of("trivialaugment (--trivialaugment)", self.trivialaugment, (True, False))
        if self.trivialaugment and self.randaugment is not None:
            raise ValueError("randaugment and trivialaugment (--randaugment, --trivialaugment) are two policies for "
                             "the same step: choose one")
        checks.number_in("random_erasing (--random-erasing)", self.random_erasing, 0.0, 1.0)
        checks.number_in("ema (--ema, a decay per step)", self.ema, 0.0, 1.0, high_open=True)
        checks.number_in("ema_horizon", self.ema_horizon, 0.0, 1.0)
        if self.ema and self.ema_horizon:
            raise ValueError("ema and ema_horizon are two ways to set the same decay: choose one")
        if self.ema_warmup_steps is not None:
            checks.integer_in("ema_warmup_steps", self.ema_warmup_steps, 0, 2**31 - 1)

    @property
    def soft_labels(self) -> bool:
        """Whether the labels become one-hot (label smoothing, mixup or cutmix)."""
        return bool(self.label_smoothing or self.mixup or self.cutmix)

    @property
    def per_image(self) -> bool:
        """Whether a per-image op runs after the usual augmentation."""
        return bool(self.randaugment or self.trivialaugment or self.random_erasing)

    @property
    def averages(self) -> bool:
        """Whether an EMA of the weights is kept (a decay, or a horizon to work one out from)."""
        return bool(self.ema or self.ema_horizon)

    @property
    def active(self) -> bool:
        return self != Regularization()

    def per_image_op(self, fill=(0, 0, 0)):
        """The per-image op of these options (:func:`keras_convnets.data.augment.per_image_op`), random erasing
        filling with ``fill``; None when none is on."""
        from keras_convnets.data import augment

        return augment.per_image_op(randaugment=self.randaugment, trivialaugment=self.trivialaugment,
                                    erasing=self.random_erasing, fill=fill)

    def per_batch_op(self, num_classes: int):
        """The per-batch op of these options (:func:`keras_convnets.data.augment.per_batch_op`): one-hot labels,
        mixed by mixup / cutmix; None when the labels stay integers."""
        from keras_convnets.data import augment

        return augment.per_batch_op(num_classes, soft_labels=self.soft_labels, mixup=self.mixup, cutmix=self.cutmix)

    def to_json(self) -> dict:
        """The options that are on (what ``run.json`` records; empty for the papers' recipes)."""
        default = Regularization()
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items() if value != getattr(default, key)}


#: torchvision's v2 recipe (Vryniotis 2021, "How to train state-of-the-art models using TorchVision's latest
#: primitives"; its ``references/classification`` command for ResNet-50): 600 epochs, 5 of linear warm-up, cosine,
#: label smoothing 0.1, mixup 0.2, cutmix 1.0, TrivialAugmentWide, random erasing 0.1, EMA, repeated augmentation,
#: FixRes (train at 176, evaluate at 224), weight decay 2e-5 (none on BN), lr 0.5 at batch 1024.
TORCHVISION_V2_EPOCHS = 600
TORCHVISION_V2_WARMUP_EPOCHS = 5
#: torchvision's EMA (``--model-ema-steps 32 --model-ema-decay 0.99998``) averages every 32 steps with
#: ``1 - decay`` scaled by ``images per update / epochs``: a time constant of ``epochs / (1 - decay)`` = 3e7 images,
#: 23.4 ImageNet epochs (1,281,167 images), i.e. this share of the 600-epoch run.
EMA_HORIZON = 1.0 / ((1.0 - 0.99998) * 1_281_167)


def ema_decay(total_steps: int, horizon: float = EMA_HORIZON) -> float:
    """The per-step EMA decay whose time constant is ``horizon`` of ``total_steps`` (torchvision's share, 3.9%):
    ``1 - 1 / (horizon * total_steps)``, at most 0.9999; 0 (off) for runs under 2 time-constant steps."""
    steps = horizon * total_steps
    return 0.0 if steps < 2 else min(0.9999, 1.0 - 1.0 / steps)


def modern_recipe(recipe: Recipe) -> Recipe:
    """torchvision's v2 schedule on ``recipe`` (its epochs already final): cosine after a linear warm-up of 5/600 of
    the epochs. The family's batch size, peak rate, momentum and coupled weight decay stay the paper's
    (torchvision's lr 0.5 at batch 1024 and weight decay 2e-5 without decay on BN are tuned for ResNet-50 on ImageNet
    over 600 epochs; README "Modern recipe" says why). Repeated augmentation and FixRes are left out."""
    return dataclasses.replace(recipe, schedule="cosine", boundaries=(), warmup_fraction=0.0, warmup_lr=0.0,
                               warmup_epochs=recipe.epochs * TORCHVISION_V2_WARMUP_EPOCHS / TORCHVISION_V2_EPOCHS,
                               source=f"torchvision v2 scaled to {recipe.epochs} epochs ({recipe.source}: batch, lr, "
                                      "weight decay)")


def modern_regularization() -> Regularization:
    """torchvision's v2 options: label smoothing 0.1, mixup 0.2 / cutmix 1.0, TrivialAugmentWide, random erasing 0.1,
    an EMA of the weights with torchvision's horizon as a share of the run's steps (its decay worked out from them,
    :func:`ema_decay`), following the weights during the learning-rate warm-up."""
    return Regularization(label_smoothing=0.1, mixup=0.2, cutmix=1.0, trivialaugment=True, random_erasing=0.1,
                          ema_horizon=EMA_HORIZON)
