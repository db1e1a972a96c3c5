"""What a user asks of a training run, as one value: :class:`TrainConfig`.

``train("resnet20", epochs=3)``, ``plan(...)`` and ``keras-convnets train resnet20 --epochs 3`` all make one
``TrainConfig`` (the command line fills it from argparse) and hand it to
:func:`keras_convnets.training.plan.plan`, which checks every field with a one-line reason, resolves the defaults
against the model's paper recipe and the dataset, and returns the ``RunPlan`` the loop runs. Nothing here imports
TensorFlow.
"""

import dataclasses
import difflib
from typing import Any, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run's arguments as given; ``None`` means "the default", resolved by ``plan``.

    What to train on:
      ``model``: a registered model name. ``dataset``: a tfds image-classification name (``"cifar10"``,
      ``"oxford_flowers102"``) or a folder of class folders. ``image_size``: the training size (default: a
      CIFAR-family dataset's own 32, else the model's input). ``augmentation``: None (the dataset's usual setting),
      True or False. ``data_dir``: the tensorflow_datasets directory (default ``$TFDS_DATA_DIR``, else tfds').
    Pretrained weights:
      ``weights``: ``"imagenet"``, ``"torchvision"`` / ``"timm[:tag]"`` or a weights / checkpoint file of the
      model's backbone: fine-tune it under a new classifier with the fine-tuning recipe. ``freeze_backbone``: first
      train the head alone for that many epochs on the frozen backbone (BatchNorm in inference mode).
      ``weights_channels``: ``"rgb"`` / ``"bgr"``, the channel order the weights were trained on (default: decided by
      their provenance, :func:`keras_convnets.data.catalog.pretrained_statistics`).
    The recipe (each overrides the paper's, :mod:`keras_convnets.training.recipes`):
      ``recipe``: ``"paper"`` or ``"modern"`` (torchvision's v2 recipe scaled to the epochs). ``epochs``,
      ``batch_size`` (per replica: the global batch is it times the replicas), ``lr``, ``weight_decay`` (coupled L2,
      PyTorch convention), ``schedule`` (``piecewise`` / ``cosine`` / ``constant`` or boundary fractions such as
      ``"0.5,0.75"``), ``warmup_epochs`` (a linear warm-up before any schedule), ``scale_lr`` (scale the rate by
      global batch / the paper's batch), ``regularization`` (a :class:`~keras_convnets.training.recipes.
      Regularization`, or a dict of some of its fields overriding the recipe's: label smoothing, mixup, cutmix,
      RandAugment / TrivialAugment, random erasing, EMA). ``model_kwargs``: factory options (``dropout``,
      ``stochastic_depth``, ``sync_bn``, ``zero_init_residual``, ``memory_efficient``).
    The run:
      ``seed``; ``out`` (default ``runs/MODEL_DATASET``); ``force`` (train again a run ``out`` holds complete);
      ``steps_per_epoch`` (cap an epoch: quick runs, tests); ``strategy`` (``auto``, ``default``, ``mirrored``,
      ``multi-worker`` (tf-keras), ``tpu``); ``precision`` (``float32``, ``bf16``, ``auto``, ``mixed_float16``,
      ``mixed_bfloat16``: :func:`keras_convnets.runtime.precision.choose_precision`).
    Runtime settings (not part of the run's identity: a resumed run may change them):
      ``steps_per_execution``, ``jit_compile``: override what
      :func:`keras_convnets.runtime.settings.choose_settings` picks for the machine.
    """

    model: str
    dataset: Any = "cifar10"
    image_size: Optional[int] = None
    augmentation: Optional[bool] = None
    data_dir: Optional[str] = None
    weights: Any = None
    freeze_backbone: Optional[int] = None
    weights_channels: Optional[str] = None
    recipe: str = "paper"
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    weight_decay: Optional[float] = None
    schedule: Optional[str] = None
    warmup_epochs: Optional[float] = None
    scale_lr: bool = False
    regularization: Any = None
    model_kwargs: Optional[Mapping[str, Any]] = None
    seed: int = 0
    out: Optional[str] = None
    force: bool = False
    steps_per_epoch: Optional[int] = None
    strategy: str = "auto"
    precision: str = "float32"
    steps_per_execution: Optional[int] = None
    jit_compile: Optional[bool] = None


#: The names :func:`config_from` accepts as keywords (every field but the two positional ones).
OPTIONS = tuple(field.name for field in dataclasses.fields(TrainConfig) if field.name not in ("model", "dataset"))


def _regularization_fields() -> tuple:
    from keras_convnets.training.recipes import Regularization  # no TensorFlow: plain dataclasses and checks

    return tuple(field.name for field in dataclasses.fields(Regularization))


def _with_regularization(options: dict) -> dict:
    """``options`` with the :class:`~keras_convnets.training.recipes.Regularization` fields given as keywords
    (``train("resnet20", ema=0.9)``, as ``--ema 0.9``) moved into ``regularization``."""
    given = {name: options.pop(name) for name in _regularization_fields() if name in options}
    if not given:
        return options
    regularization = options.get("regularization")
    if regularization is None or isinstance(regularization, Mapping):
        options["regularization"] = {**(regularization or {}), **given}
    else:  # a Regularization: its fields replaced
        options["regularization"] = dataclasses.replace(regularization, **given)
    return options


def _not_a_name(model: Any) -> TypeError:
    what = f"a {type(model).__name__}" + (f" named {model.name!r}" if isinstance(getattr(model, "name", None), str)
                                          else "")
    return TypeError(f"model must be a registered model name such as 'resnet20' (keras_convnets.list_models()) or a "
                     f"TrainConfig; got {what}: pass the name, and the factory options as model_kwargs")


def config_from(model: Any, dataset: Any = "cifar10", options: Optional[Mapping[str, Any]] = None) -> TrainConfig:
    """``model`` itself when it is a :class:`TrainConfig` (then ``dataset`` and ``options`` must not be given), else
    ``TrainConfig(model, dataset, **options)``, where ``options`` may also name the fields of
    :class:`~keras_convnets.training.recipes.Regularization` (gathered into ``regularization``); an unknown option
    is a TypeError naming the closest ones."""
    options = dict(options or {})
    if isinstance(model, TrainConfig):
        if options or dataset not in (None, "cifar10", model.dataset):
            raise TypeError("pass either a TrainConfig or a model name with options, not both")
        return model
    if not isinstance(model, str):
        raise _not_a_name(model)
    accepted = OPTIONS + _regularization_fields()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        hints = [f"{name!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(name, accepted, 1))
                 else repr(name) for name in unknown]
        raise TypeError(f"unknown training option(s) {', '.join(hints)}; TrainConfig's options: {', '.join(OPTIONS)}"
                        f"; Regularization's: {', '.join(_regularization_fields())}")
    return TrainConfig(model, "cifar10" if dataset is None else dataset, **_with_regularization(options))
