"""``keras-convnets train MODEL``: train a registered model with its paper's recipe and export its SavedModel; the
flags fill a :class:`~keras_convnets.training.config.TrainConfig` (one flag per field, named as it)."""

import argparse
import dataclasses
import sys

from keras_convnets.cli.common import DATA_DIR_HELP, PROG, UsageError, one_line


def add(commands):
    from keras_convnets.data import catalog
    from keras_convnets.runtime import distribute
    from keras_convnets.runtime.precision import PRECISIONS
    from keras_convnets.training import recipes

    p = commands.add_parser("train", help="train a registered model on a tfds dataset or a folder of images and "
                                          "export a SavedModel",
                            description="Train MODEL with its paper's recipe (overridable) and export "
                                        "OUT/saved_model, which serves raw uint8 images. Re-running the same command "
                                        "resumes a killed run.")
    p.add_argument("model", help="a registered model name (see `keras-convnets models`)")
    p.add_argument("--dataset", default="cifar10",
                   help=f"a tfds image-classification dataset ({', '.join(catalog.DATASETS)}, oxford_flowers102, ...) "
                        "or a folder of class folders, PATH/CLASS/IMAGE (default cifar10)")
    p.add_argument("--image-size", type=int, help="training size (default: 32 for the CIFAR-family datasets, else "
                                                  "the model's input size)")
    p.add_argument("--weights", help="fine-tune from pretrained weights: 'imagenet' (keras.applications' files), "
                                     "'torchvision' / 'timm[:tag]' (their checkpoints), or a weights or checkpoint "
                                     "file of the model's backbone; a new head for the dataset's classes and the "
                                     "fine-tuning recipe")
    p.add_argument("--weights-channels", choices=("rgb", "bgr"),
                   help="with --weights: the channel order the weights were trained on (default: bgr for "
                        "keras.applications' ResNet-50/101/152 files, known by name or MD5, and 'imagenet'; rgb for "
                        "any other file); bgr reverses the first conv's input channels")
    p.add_argument("--freeze-backbone", type=int, nargs="?", const=recipes.FINE_TUNE_HEAD.epochs, metavar="N",
                   help="with --weights: first train the new head alone for N epochs (default "
                        f"{recipes.FINE_TUNE_HEAD.epochs}) on the frozen backbone (BatchNorm in inference mode), then "
                        "every layer for --epochs at the fine-tuning rate")
    p.add_argument("--epochs", type=int, help="epochs (default: the paper's; the schedule scales with it)")
    p.add_argument("--batch-size", type=int, help="batch size per replica; the global batch is this times the "
                                                  "replicas (default: the paper's)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the paper's, 0.1)")
    p.add_argument("--scale-lr", action="store_true",
                   help="scale the learning rate linearly by global batch / the paper's batch")
    p.add_argument("--steps-per-epoch", type=int, help="cap the optimizer steps of an epoch (quick runs)")
    p.add_argument("--steps-per-execution", type=int,
                   help="train steps per compiled call (default: chosen for this machine; the run's first line says)")
    p.add_argument("--jit-compile", choices=("on", "off"),
                   help="XLA for the train step (default: on TensorFlow off on CPUs, Keras' choice on GPUs/TPUs; on "
                        "JAX on, and off runs the steps op by op)")
    p.add_argument("--weight-decay", type=float, help="coupled L2 coefficient, PyTorch convention (default: paper's)")
    p.add_argument("--schedule", help=f"{', '.join(recipes.SCHEDULES)}, or boundary fractions such as 0.5,0.75 "
                                      "(default: the paper's piecewise schedule)")
    p.add_argument("--strategy", default="auto",
                   help=f"{', '.join(distribute.STRATEGIES)}. On TensorFlow a tf.distribute strategy (default auto: a "
                        "TPU if one is found, multi-worker if TF_CONFIG names several workers, mirrored on several "
                        "GPUs, else one device; multi-worker runs on tf-keras, pip install -e \".[multiworker]\"); "
                        "on JAX (KERAS_BACKEND=jax) data-parallel, keras.distribution.DataParallel over every device "
                        "JAX sees (auto: when it sees several), or default")
    p.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="float32 (default); bf16: bfloat16 compute, float32 variables (TensorFlow on CPUs with native "
                        "bf16: oneDNN rewrite; GPU/TPU, and JAX: mixed_bfloat16); auto: bf16 where the CPU has it "
                        "natively (TensorFlow); Keras policies")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--seed", type=int, default=0, help="random seed of weights, shuffling and augmentation")
    p.add_argument("--out", help="output directory (default runs/MODEL_DATASET)")
    p.add_argument("--force", action="store_true", help="train again a run that OUT holds complete (its record is "
                                                        "replaced when the new run completes)")
    p.add_argument("--no-augmentation", dest="augmentation", action="store_false", default=None,
                   help="train without pad-crop-flip (default: the dataset's usual setting)")
    modern = p.add_argument_group("modern training options (README \"Modern recipe\"; each composes with the others)")
    modern.add_argument("--recipe", default="paper", choices=recipes.RECIPES,
                        help="paper: the family's paper recipe (default); modern: torchvision's v2 recipe scaled to "
                             "--epochs (cosine after a 5/600 warm-up, label smoothing 0.1, mixup 0.2 / cutmix 1.0, "
                             "TrivialAugment, random erasing 0.1, EMA); the flags below override it")
    modern.add_argument("--warmup-epochs", type=float, metavar="N",
                        help="linear learning-rate warm-up from ~0 to the peak over N epochs, before any schedule")
    for flag, options in REGULARIZATION_FLAGS.items():
        modern.add_argument(flag, **options)
    model = p.add_argument_group("model options (passed to the factory)")
    model.add_argument("--dropout", type=float, help="dropout rate (Wide ResNet, DenseNet)")
    model.add_argument("--stochastic-depth", type=float, help="last block's survival probability (ResNets)")
    model.add_argument("--sync-bn", action="store_true", default=None, help="synchronized batch norm across replicas")
    model.add_argument("--zero-init-residual", action="store_true", default=None,
                       help="ResNets: each residual branch starts at zero, so every block starts as the identity")
    model.add_argument("--memory-efficient", action="store_true", default=None,
                       help="DenseNet: recompute concat-BN-ReLU-conv in the backward pass to save memory")
    p.set_defaults(func=run, before_start=refuse_backend)


def _randaugment(text):
    """``"N,M"`` as ``(N, M)``; anything else is the usage error of ``--randaugment``."""
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise UsageError(f"--randaugment must be N,M: N ops and a magnitude bin M of 0-30, e.g. 2,9; got {text!r}")
    return int(parts[0]), int(parts[1])


#: The ``train`` flags of :class:`~keras_convnets.training.recipes.Regularization`'s fields, each named as its field
#: (a new option is a field there, its op in :mod:`keras_convnets.data.augment`, and one row here).
REGULARIZATION_FLAGS = {
    "--label-smoothing": dict(type=float, metavar="E", help="label smoothing, e.g. 0.1"),
    "--mixup": dict(type=float, metavar="A", help="mixup with lam ~ Beta(A, A) per batch (0: off)"),
    "--cutmix": dict(type=float, metavar="A",
                     help="cutmix with lam ~ Beta(A, A) per batch (0: off); with --mixup, one of them per batch"),
    "--randaugment": dict(type=_randaugment, metavar="N,M",
                          help="RandAugment: N ops at magnitude M of 0-30, e.g. 2,9"),
    "--trivialaugment": dict(action=argparse.BooleanOptionalAction, default=None,
                             help="TrivialAugmentWide (--no-trivialaugment: off, e.g. in the modern recipe)"),
    "--random-erasing": dict(type=float, metavar="P",
                             help="erase a random box of an image with probability P (torchvision's boxes)"),
    "--ema": dict(type=float, metavar="DECAY",
                  help="evaluate and export an exponential moving average of the weights and BN statistics, DECAY "
                       "per optimizer step (e.g. 0.999; 0: off)"),
}


def _regularization_flags(args):
    """The modern options given on the command line, as a dict of ``Regularization`` fields."""
    fields = [flag[2:].replace("-", "_") for flag in REGULARIZATION_FLAGS]
    return {field: getattr(args, field) for field in fields if getattr(args, field) is not None}


#: The ``train`` flags that are factory options (``TrainConfig.model_kwargs``), given only when set.
MODEL_OPTION_FLAGS = ("dropout", "stochastic_depth", "sync_bn", "zero_init_residual", "memory_efficient")


def train_config(args):
    """The parsed ``train`` command line as a :class:`~keras_convnets.training.config.TrainConfig`: every flag
    named as a field fills it; the model options and the modern options are gathered into ``model_kwargs`` and
    ``regularization``; ``--jit-compile on|off`` becomes a bool."""
    from keras_convnets.training.config import TrainConfig

    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    given = {name: value for name, value in vars(args).items() if name in fields}
    model_kwargs = {name: getattr(args, name) for name in MODEL_OPTION_FLAGS if getattr(args, name) is not None}
    jit_compile = None if args.jit_compile is None else args.jit_compile == "on"
    return TrainConfig(**{**given, "model_kwargs": model_kwargs, "regularization": _regularization_flags(args),
                          "jit_compile": jit_compile})


def refuse_backend(args):
    """The one-line refusal of a Keras backend training does not run on (PyTorch, numpy), read from Keras'
    configuration before Keras or TensorFlow is imported (so it costs nothing); ``loop.plan`` checks the backend Keras
    started on (the only one that counts once Keras is imported: a caller of :func:`keras_convnets.cli.main`'s)."""
    import os

    from keras_convnets.runtime import startup
    from keras_convnets.training.plan import backend_refusal

    # tf-keras (models/backend.py's LEGACY_KERAS_VALUES, not imported here: it imports Keras) is always TensorFlow
    legacy = os.environ.get("TF_USE_LEGACY_KERAS") in ("1", "true", "True")
    started = "keras" in sys.modules or "tf_keras" in sys.modules
    refusal = None if legacy or started else backend_refusal(startup.configured_keras_backend())
    if refusal:
        raise UsageError(refusal)


def run(args):
    from keras_convnets.serving.saved_model import ExportError
    from keras_convnets.training import loop

    try:
        run_plan = loop.plan(train_config(args))
    except ValueError as error:
        raise UsageError(str(error)) from None
    import tensorflow as tf

    try:
        result = loop.run(run_plan)
    except ValueError as error:  # a model option the factory rejects, no TPU, OUT locked or unusable, bad data
        raise UsageError(str(error)) from None
    except (loop.DivergedError, ExportError, OSError) as error:  # e.g. the disk is full: the last checkpoint is kept
        reason = str(error) if isinstance(error, (loop.DivergedError, ExportError)) else \
            f"{error.strerror or error}{f': {error.filename}' if error.filename else ''}; re-run the same command " \
            f"to resume from the last finished epoch"
        print(f"{PROG}: error: {one_line(reason)}", file=sys.stderr)
        return 1
    except tf.errors.UnavailableError as error:  # multi-worker: a peer stopped; tf.distribute is not elastic
        reason = one_line(error)[:200]
        print(f"{PROG}: error: a worker of the cluster is gone ({reason}); restart every worker with the same "
              f"command: they resume from {run_plan.out}/backup", file=sys.stderr)
        return 1
    print(f"test accuracy: {result.test_accuracy:.4f}")
    print(f"saved model: {result.export_path}")
    return 0
