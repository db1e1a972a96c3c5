"""The ``keras-convnets`` command: ``train``, ``evaluate``, ``predict``, ``export``, ``convert``, ``models`` (and
``bench`` when installed).

Exit status 0 on success, 2 on a user error with a one-line reason on stderr (never a traceback). TensorFlow is
imported only once the arguments parse, so ``--help`` and malformed command lines are quick; its C++ start-up lines
are kept off stderr (:func:`keras_convnets.training.performance.start_tensorflow`, ``TF_CPP_MIN_LOG_LEVEL=2``
unless the user set it).
"""

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import logging
import os
import sys

from keras_convnets.training import performance

PROG = "keras-convnets"
DIR_HELP = "train output directory or SavedModel directory"
DATA_DIR_HELP = "tensorflow_datasets directory (default: $TFDS_DATA_DIR, else tfds' ~/tensorflow_datasets)"


class UsageError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def _add_train(sub):
    from keras_convnets.training import data, distribute, recipes
    from keras_convnets.training.loop import PRECISIONS

    p = sub.add_parser("train", help="train a registered model on a tfds dataset or a folder of images and export a "
                                     "SavedModel",
                       description="Train MODEL with its paper's recipe (overridable) and export OUT/saved_model, "
                                   "which serves raw uint8 images. Re-running the same command resumes a killed run.")
    p.add_argument("model", help="a registered model name (see `keras-convnets models`)")
    p.add_argument("--dataset", default="cifar10",
                   help=f"a tfds image-classification dataset ({', '.join(data.DATASETS)}, oxford_flowers102, ...) "
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
                   help="XLA for the train step (default: off on CPUs, Keras' choice on GPUs/TPUs)")
    p.add_argument("--weight-decay", type=float, help="coupled L2 coefficient, PyTorch convention (default: paper's)")
    p.add_argument("--schedule", help=f"{', '.join(recipes.SCHEDULES)}, or boundary fractions such as 0.5,0.75 "
                                      "(default: the paper's piecewise schedule)")
    p.add_argument("--strategy", default="auto",
                   help=f"tf.distribute strategy: {', '.join(distribute.STRATEGIES)} (default auto: a TPU if one is "
                        "found, multi-worker if TF_CONFIG names several workers, mirrored on several GPUs, else one "
                        "device); multi-worker runs on tf-keras (pip install -e \".[multiworker]\")")
    p.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="float32 (default); bf16: bfloat16 compute, float32 variables (CPUs with native bf16: oneDNN "
                        "rewrite; GPU/TPU: mixed_bfloat16); auto: bf16 where the CPU has it natively; Keras policies")
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
    modern.add_argument("--label-smoothing", type=float, metavar="E", help="label smoothing, e.g. 0.1")
    modern.add_argument("--mixup", type=float, metavar="A", help="mixup with lam ~ Beta(A, A) per batch (0: off)")
    modern.add_argument("--cutmix", type=float, metavar="A",
                        help="cutmix with lam ~ Beta(A, A) per batch (0: off); with --mixup, one of them per batch")
    modern.add_argument("--randaugment", metavar="N,M", help="RandAugment: N ops at magnitude M of 0-30, e.g. 2,9")
    modern.add_argument("--trivialaugment", action=argparse.BooleanOptionalAction, default=None,
                        help="TrivialAugmentWide (--no-trivialaugment: off, e.g. in the modern recipe)")
    modern.add_argument("--random-erasing", type=float, metavar="P",
                        help="erase a random box of an image with probability P (torchvision's boxes)")
    modern.add_argument("--ema", type=float, metavar="DECAY",
                        help="evaluate and export an exponential moving average of the weights and BN statistics, "
                             "DECAY per optimizer step (e.g. 0.999; 0: off)")
    model = p.add_argument_group("model options (passed to the factory)")
    model.add_argument("--dropout", type=float, help="dropout rate (Wide ResNet, DenseNet)")
    model.add_argument("--stochastic-depth", type=float, help="last block's survival probability (ResNets)")
    model.add_argument("--sync-bn", action="store_true", default=None, help="synchronized batch norm across replicas")
    model.add_argument("--zero-init-residual", action="store_true", default=None,
                       help="ResNets: each residual branch starts at zero, so every block starts as the identity")
    model.add_argument("--memory-efficient", action="store_true", default=None,
                       help="DenseNet: recompute concat-BN-ReLU-conv in the backward pass to save memory")
    p.set_defaults(func=_train)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="test accuracy of an exported SavedModel on a tfds split or an image folder",
                       description="Accuracy of DIR's SavedModel (DIR: a train --out directory or a SavedModel) "
                                   "on a tfds split or a folder of class folders, seen as training evaluated it.")
    p.add_argument("dir", help=DIR_HELP)
    p.add_argument("--dataset", help="tfds dataset or folder (default: the one recorded in DIR's run.json)")
    p.add_argument("--split", help="tfds split (default: the one training evaluated on: test, else validation, "
                                   "else the held-out part of train)")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--batch-size", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--tta", choices=("flip",), help="test-time augmentation: flip averages the probabilities of each "
                                                   "image and its horizontal mirror")
    p.set_defaults(func=_evaluate)


def _add_predict(sub):
    p = sub.add_parser("predict", help="top-k classes of image files",
                       description="Classify image files (JPEG, PNG, GIF, BMP or WebP) with DIR's SavedModel; "
                                   "images are resized to the model's input size.")
    p.add_argument("dir", help=DIR_HELP)
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to print per image (default 3)")
    p.set_defaults(func=_predict)


def _add_convert(sub):
    p = sub.add_parser("convert", help="a torchvision / timm checkpoint as a Keras weights file",
                       description="Map a torchvision or timm checkpoint (.pth, .safetensors, or 'torchvision' / "
                                   "'timm:TAG' to download one) onto MODEL and write its weights as a Keras file; "
                                   "--export also writes a SavedModel that `predict` reads.")
    p.add_argument("source", help="checkpoint file, or torchvision, torchvision:v2, timm, timm:TAG")
    p.add_argument("model", help="a registered model name (resnet50/101/152 are built in the torchvision layout)")
    p.add_argument("--out", required=True, help="Keras weights file to write (NAME.weights.h5)")
    p.add_argument("--classes", type=int, help="classes of a new classifier: load the backbone, skip the checkpoint's")
    p.add_argument("--export", metavar="DIR", help="also write a SavedModel (uint8 images in) for `predict`")
    p.set_defaults(func=_convert)


def _add_export(sub):
    from keras_convnets import deploy

    p = sub.add_parser("export", help="the model as ONNX, LiteRT (float32 or int8), OpenVINO or a SavedModel",
                       description="Write DIR's model (a train --out directory or a SavedModel) for another runtime: "
                                   "uint8 RGB images in, probabilities out, the class names beside the file. ONNX, "
                                   "LiteRT and OpenVINO take the model's fixed input size (the command says which); "
                                   "the file is checked against the SavedModel in its own runtime before it is kept.")
    p.add_argument("dir", help=DIR_HELP)
    p.add_argument("--format", required=True, choices=list(deploy.FORMATS), help=deploy.format_help())
    p.add_argument("--out", required=True, help="file to write: NAME.onnx, NAME.tflite, NAME.xml (+ NAME.bin), or a "
                                                "SavedModel directory")
    p.add_argument("--quantize", choices=deploy.QUANTIZATIONS,
                   help="litert: full-integer int8 post-training quantization, calibrated on the run's training "
                        "images")
    p.add_argument("--calibration-dataset", help="with --quantize: tfds dataset or folder to calibrate on (default: "
                                                 "the training set recorded in DIR's run.json)")
    p.add_argument("--calibration-images", type=int, default=deploy.CALIBRATION_IMAGES,
                   help=f"with --quantize: how many training images calibrate (default {deploy.CALIBRATION_IMAGES})")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.set_defaults(func=_export)


def _add_models(sub):
    p = sub.add_parser("models", help="list the registered models", description="The model registry as a table.")
    p.add_argument("--dataset", choices=("cifar", "imagenet"), help="only models designed for this input")
    p.set_defaults(func=_models)


def _add_bench(sub):
    """``bench`` exists when :mod:`keras_convnets.bench` does; it defines its own arguments."""
    if importlib.util.find_spec("keras_convnets.bench") is None:
        return
    bench = importlib.import_module("keras_convnets.bench")
    p = sub.add_parser("bench", help="throughput benchmarks", description=(bench.__doc__ or "").split("\n")[0])
    bench.add_arguments(p)
    p.set_defaults(func=lambda args: _bench(bench, args))


def _bench(bench, args):
    try:
        return bench.run(args)
    except ValueError as error:  # bad models, modes, sizes: checked before anything is timed
        raise UsageError(str(error)) from None


def build_parser():
    parser = _Parser(prog=PROG, description="Paper-exact ResNet / WRN / ResNeXt / DenseNet: train on tfds, export "
                                            "SavedModels that serve raw images.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for add in (_add_train, _add_evaluate, _add_predict, _add_export, _add_convert, _add_models, _add_bench):
        add(sub)
    return parser


def _randaugment(text):
    """``"N,M"`` as ``(N, M)``; anything else is the usage error of ``--randaugment``."""
    parts = text.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise UsageError(f"--randaugment must be N,M: N ops and a magnitude bin M of 0-30, e.g. 2,9; got {text!r}")
    return int(parts[0]), int(parts[1])


def _regularization_flags(args):
    """The modern options given on the command line, as a dict of ``Regularization`` fields."""
    given = dict(label_smoothing=args.label_smoothing, mixup=args.mixup, cutmix=args.cutmix,
                 trivialaugment=args.trivialaugment, random_erasing=args.random_erasing, ema=args.ema,
                 randaugment=None if args.randaugment is None else _randaugment(args.randaugment))
    return {key: value for key, value in given.items() if value is not None}


#: The ``train`` flags that are factory options (``TrainConfig.model_kwargs``), given only when set.
MODEL_OPTION_FLAGS = ("dropout", "stochastic_depth", "sync_bn", "zero_init_residual", "memory_efficient")


def train_config(args):
    """The parsed ``train`` command line as a :class:`~keras_convnets.training.train_config.TrainConfig`: every flag
    named as a field fills it; the model options and the modern options are gathered into ``model_kwargs`` and
    ``regularization``; ``--jit-compile on|off`` becomes a bool."""
    from keras_convnets.training.train_config import TrainConfig

    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    given = {name: value for name, value in vars(args).items() if name in fields}
    model_kwargs = {name: getattr(args, name) for name in MODEL_OPTION_FLAGS if getattr(args, name) is not None}
    jit_compile = None if args.jit_compile is None else args.jit_compile == "on"
    return TrainConfig(**{**given, "model_kwargs": model_kwargs, "regularization": _regularization_flags(args),
                          "jit_compile": jit_compile})


def _train(args):
    from keras_convnets.training.export import ExportError
    from keras_convnets.training.loop import DivergedError, plan, run

    try:
        run_plan = plan(train_config(args))
    except ValueError as error:
        raise UsageError(str(error)) from None
    import tensorflow as tf

    try:
        result = run(run_plan)
    except ValueError as error:  # a model option the factory rejects, no TPU, OUT locked or unusable, bad data
        raise UsageError(str(error)) from None
    except (DivergedError, ExportError, OSError) as error:  # e.g. the disk is full: the last checkpoint is kept
        reason = str(error) if isinstance(error, (DivergedError, ExportError)) else \
            f"{error.strerror or error}{f': {error.filename}' if error.filename else ''}; re-run the same command " \
            f"to resume from the last finished epoch"
        print(f"{PROG}: error: {' '.join(reason.split())}", file=sys.stderr)
        return 1
    except tf.errors.UnavailableError as error:  # multi-worker: a peer stopped; tf.distribute is not elastic
        reason = " ".join(str(error).split())[:200]
        print(f"{PROG}: error: a worker of the cluster is gone ({reason}); restart every worker with the same "
              f"command: they resume from {run_plan.out}/backup", file=sys.stderr)
        return 1
    print(f"test accuracy: {result.test_accuracy:.4f}")
    print(f"saved model: {result.export_path}")
    return 0


def _saved_model_dir(path):
    """``path`` itself if it is a SavedModel, else ``path/saved_model`` (:func:`keras_convnets.training.export.
    saved_model_dir`), its error as a usage error."""
    from keras_convnets.training import export

    try:
        return export.saved_model_dir(path)
    except export.SavedModelError as error:
        raise UsageError(str(error)) from None


def _recorded_dataset(saved_model_dir):
    from keras_convnets.training import export

    found = export.recorded_run(saved_model_dir)
    if found is None:
        return None
    run_file, record = found
    try:
        return record["arguments"]["dataset"]
    except (KeyError, TypeError):
        raise UsageError(f"{run_file} is not a run record (a JSON object with arguments.dataset): pass "
                         "--dataset") from None


def _evaluate(args):
    from keras_convnets.training import data, export

    path = _saved_model_dir(args.dir)
    dataset = args.dataset or _recorded_dataset(path)
    if dataset is None:
        raise UsageError(f"{path} records no dataset (no run.json beside it): pass --dataset")
    import tensorflow as tf

    try:
        if dataset in data.DATASETS:
            data.dataset_info(dataset, args.data_dir, download=True)
        scores = export.evaluate_saved_model(path, dataset, args.split, data_dir=args.data_dir,
                                             batch_size=args.batch_size, tta=args.tta)
    except ValueError as error:
        raise UsageError(str(error)) from None
    except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
        raise UsageError(f"{dataset}'s files cannot be read ({' '.join(str(error).split())[:160]}); they are corrupt "
                         "or missing: prepare the dataset again or point --data-dir at a good copy") from None
    tta = f", test-time augmentation: {args.tta}" if args.tta else ""
    print(f"{dataset} {scores.split} accuracy: {scores.accuracy:.4f} ({scores.count} images{tta})")
    return 0


def _read_image(path, saved_model):
    """``(uint8 [H, W, 3] image, None)`` of the file ``path`` as the SavedModel takes it (resized for an export older
    than the any-size signature), or ``(None, why not)``."""
    import tensorflow as tf

    from keras_convnets.training import export

    if os.path.isdir(path):
        return None, "is a directory, not an image file (pass the image files: DIR/*.jpg)"
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except tf.errors.NotFoundError:
        return None, "no such file"
    except (tf.errors.OpError, ValueError):
        return None, "not a decodable image: JPEG, PNG, GIF, BMP or WebP"
    height, width = export.input_size(saved_model)
    if not export.resizes_images(saved_model) and tuple(image.shape[:2]) != (height, width):
        image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, (height, width))), 0, 255), tf.uint8)
    return image.numpy(), None


def _predict(args):
    import numpy as np

    from keras_convnets.models import imagenet
    from keras_convnets.training import export

    if args.top_k <= 0:
        raise UsageError(f"--top-k must be a positive integer; got {args.top_k}")
    try:
        saved_model = export.load(_saved_model_dir(args.dir))
    except ValueError as error:
        raise UsageError(str(error)) from None
    names = imagenet.readable(export.load_class_names(saved_model))  # an older ImageNet export's "0".."999"
    paths, images, failed = [], [], 0
    for path in args.images:
        image, reason = _read_image(path, saved_model)
        if image is None:
            print(f"{PROG}: error: {path}: {reason}", file=sys.stderr)
            failed += 1
            continue
        paths.append(path)
        images.append(image)
    if images:
        # An any-size export resizes and crops each image itself (the evaluation view), so images go one by one.
        rows = np.concatenate([export.predict(saved_model, image[None]) for image in images]) \
            if export.resizes_images(saved_model) else export.predict(saved_model, np.stack(images))
        for path, row in zip(paths, rows):
            top = np.argsort(-row)[:args.top_k]
            print(f"{path}: " + ", ".join(f"{names[i]} {row[i]:.3f}" for i in top))
    return 2 if failed else 0


def _export(args):
    from keras_convnets import deploy

    try:
        result = deploy.export(args.dir, args.format, args.out, quantize=args.quantize,
                               calibration_dataset=args.calibration_dataset,
                               calibration_images=args.calibration_images, data_dir=args.data_dir)
    except ValueError as error:  # no SavedModel, a bad --out, a missing extra, no calibration data
        raise UsageError(str(error)) from None
    except deploy.MissingExtraError as error:
        raise UsageError(str(error)) from None
    except deploy.ExportError as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    print("\n".join(result.describe()))
    return 0


def _convert(args):
    from keras_convnets import convert
    from keras_convnets.training.export import ExportError

    if args.classes is not None and args.classes <= 0:
        raise UsageError(f"--classes must be a positive integer; got {args.classes}")
    try:
        lines = convert.convert(args.source, args.model, args.out, classes=args.classes, export_dir=args.export)
    except (ValueError, ImportError, OSError) as error:  # a misfit, a missing extra, no download, a refused --out
        raise UsageError(str(error)) from None
    except ExportError as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _models(args):
    from keras_convnets.models import registry

    rows = [("name", "factory", "family", "input", "params", "GMACs", "reference")]
    for name in registry.list_models(args.dataset):
        info = registry.model_info(name)
        params, flops = getattr(info, "params", None), getattr(info, "flops", None)
        rows.append((info.name, info.factory.__name__, info.family, f"{info.input_size}x{info.input_size}",
                     "-" if params is None else f"{params:,}", "-" if flops is None else f"{flops / 1e9:.3g}",
                     info.reference))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _use_legacy_keras(args, reexec):
    """Multi-worker training runs on tf-keras, which ``tf.keras`` is only if ``TF_USE_LEGACY_KERAS=1`` was set
    before TensorFlow was imported; importing this package imported it already. So a command line that asks for
    multi-worker (``--strategy multi-worker``, or ``auto`` with a multi-worker ``TF_CONFIG``) sets the variable and
    re-executes itself (same process id, same arguments): ``reexec`` is true for a real command line; a caller of
    :func:`main` with its own ``argv`` gets a usage error instead."""
    from keras_convnets.models.backend import KERAS_3
    from keras_convnets.training import distribute

    try:
        if getattr(args, "command", None) != "train" or not distribute.needs_legacy_keras(args.strategy):
            return
    except distribute.StrategyError as error:  # TF_CONFIG is not JSON
        raise UsageError(str(error)) from None
    if not distribute.legacy_keras_available():
        raise UsageError("multi-worker training runs on tf-keras, which is not installed: "
                         f"{distribute.MULTIWORKER_INSTALL}")
    if not KERAS_3:
        return
    if not reexec or os.environ.get(distribute.LEGACY_KERAS_ENV) == "1":
        raise UsageError(f"multi-worker training runs on tf-keras: set {distribute.LEGACY_KERAS_ENV}=1 before "
                         "TensorFlow is imported, or run the keras-convnets command")
    os.environ[distribute.LEGACY_KERAS_ENV] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "keras_convnets.cli", *sys.argv[1:]])


class _PrintHandler(logging.Handler):
    """The library's log records as the command's output lines: the message alone, on the ``sys.stdout`` of the
    moment (what the user reads; warnings included, as the command always printed them)."""

    def emit(self, record):
        try:
            print(self.format(record), flush=True)
        except Exception:  # noqa: BLE001 (logging's contract: a handler never raises)
            self.handleError(record)


@contextlib.contextmanager
def _library_messages_printed():
    """The ``keras_convnets`` logger's INFO records printed for the duration of a command (library code logs; only
    the command line prints), then the logger as it was."""
    logger = logging.getLogger("keras_convnets")
    handler = _PrintHandler()
    before = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]


def main(argv=None) -> int:
    """Runs the command line ``argv`` (default ``sys.argv[1:]``) and returns the exit status."""
    with _library_messages_printed():
        return _main(argv)


def _main(argv) -> int:
    performance.prefer_onednn()  # before anything imports TensorFlow
    performance.quiet_tensorflow_logs()  # TF_CPP_MIN_LOG_LEVEL=2 unless the user set it
    try:
        args = build_parser().parse_args(argv)
        # TensorFlow's start-up notices (and a driverless cuInit error) kept off the user's screen; a multi-worker
        # command re-executes itself afterwards with TF_CPP_MIN_LOG_LEVEL in its environment, and does so again.
        performance.start_tensorflow()
        _use_legacy_keras(args, reexec=argv is None)
        return int(args.func(args) or 0)
    except UsageError as error:
        message = " ".join(str(error).split())
        print(message if message.startswith(PROG) else f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `keras-convnets models | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
