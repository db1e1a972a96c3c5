"""``keras-convnets export DIR --format FORMAT --out PATH``: the model for another runtime (the formats are
:data:`keras_convnets.serving.formats.FORMATS`; the choices and their help are read from it)."""

import sys

from keras_convnets.cli.common import DATA_DIR_HELP, DIR_HELP, PROG, UsageError, one_line


def add(commands):
    from keras_convnets.serving import formats

    p = commands.add_parser("export", help="the model as ONNX, LiteRT (float32 or int8), OpenVINO or a SavedModel",
                            description="Write DIR's model (a train --out directory or a SavedModel) for another "
                                        "runtime: uint8 RGB images in, probabilities out, the class names beside the "
                                        "file. ONNX, LiteRT and OpenVINO take the model's fixed input size (the "
                                        "command says which); the file is checked against the SavedModel in its own "
                                        "runtime before it is kept.")
    p.add_argument("dir", help=DIR_HELP)
    p.add_argument("--format", required=True, choices=list(formats.FORMATS), help=formats.format_help())
    suffixes = ", ".join(f"NAME{spec.suffix}" for spec in formats.FORMATS.values() if spec.suffix)
    p.add_argument("--out", required=True, help=f"file to write: {suffixes}, or a SavedModel directory")
    p.add_argument("--quantize", choices=formats.QUANTIZATIONS,
                   help="litert: full-integer int8 post-training quantization, calibrated on the run's training "
                        "images")
    p.add_argument("--calibration-dataset", help="with --quantize: tfds dataset or folder to calibrate on (default: "
                                                 "the training set recorded in DIR's run.json)")
    p.add_argument("--calibration-images", type=int, default=formats.CALIBRATION_IMAGES,
                   help=f"with --quantize: how many training images calibrate (default {formats.CALIBRATION_IMAGES})")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.set_defaults(func=run)


def run(args):
    from keras_convnets.serving import formats

    try:
        result = formats.export(args.dir, args.format, args.out, quantize=args.quantize,
                                calibration_dataset=args.calibration_dataset,
                                calibration_images=args.calibration_images, data_dir=args.data_dir)
    except (ValueError, formats.MissingExtraError) as error:  # no SavedModel, a refused --out, a missing extra
        raise UsageError(str(error)) from None
    except formats.ExportError as error:
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return 1
    print("\n".join(result.describe()))
    return 0
