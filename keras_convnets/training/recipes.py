"""The papers' training recipes, one per registry family, and the learning-rate schedules they use.

Schedules are given as fractions of training (ResNet's 32k/48k of 64k iterations become 0.5 / 0.75), so a run
shortened with ``epochs=`` keeps the paper's shape. Weight decay is the papers' coupled L2 in PyTorch's convention,
passed to the model factory (``weight_decay=``), never the optimizer's decoupled ``weight_decay``.
"""

import dataclasses
from typing import Optional, Tuple

#: Schedule names accepted by ``schedule=`` (besides explicit boundaries such as ``"0.3,0.6,0.8"``).
SCHEDULES = ("piecewise", "cosine", "constant")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """SGD with momentum, a learning-rate schedule and the model options of one paper.

    ``boundaries``: fractions of training at which the rate is multiplied by ``factor`` (piecewise schedule).
    ``warmup_fraction``/``warmup_lr``: train at ``warmup_lr`` for that fraction of training first (He et al.'s
    0.01 for 400 of 64k iterations). ``dropout``: the factory's dropout with augmentation;
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
    """The recipe of a registered model (a :class:`keras_convnets.models.registry.ModelInfo`); with
    ``pretrained=True`` (the run starts from weights), :data:`FINE_TUNE`."""
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


def learning_rate(recipe: Recipe, total_steps: int):
    """The Keras learning-rate schedule of ``recipe`` over ``total_steps`` optimizer steps."""
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
