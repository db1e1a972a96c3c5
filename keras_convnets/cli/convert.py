"""``keras-convnets convert SOURCE MODEL --out W``: a torchvision / timm checkpoint as a Keras weights file (and a
SavedModel with ``--export``)."""

import sys

from keras_convnets.cli.common import PROG, UsageError, one_line


def add(commands):
    p = commands.add_parser("convert", help="a torchvision / timm checkpoint as a Keras weights file",
                            description="Map a torchvision or timm checkpoint (.pth, .safetensors, or 'torchvision' / "
                                        "'timm:TAG' to download one) onto MODEL and write its weights as a Keras "
                                        "file; --export also writes a SavedModel that `predict` reads.")
    p.add_argument("source", help="checkpoint file, or torchvision, torchvision:v2, timm, timm:TAG")
    p.add_argument("model", help="a registered model name (resnet50/101/152 are built in the torchvision layout)")
    p.add_argument("--out", required=True, help="Keras weights file to write (NAME.weights.h5)")
    p.add_argument("--classes", type=int, help="classes of a new classifier: load the backbone, skip the checkpoint's")
    p.add_argument("--export", metavar="DIR", help="also write a SavedModel (uint8 images in) for `predict`")
    p.set_defaults(func=run)


def run(args):
    from keras_convnets.serving import convert
    from keras_convnets.serving.saved_model import ExportError

    if args.classes is not None and args.classes <= 0:
        raise UsageError(f"--classes must be a positive integer; got {args.classes}")
    try:
        lines = convert.convert(args.source, args.model, args.out, classes=args.classes, export_dir=args.export)
    except (ValueError, ImportError, OSError) as error:  # a misfit, a missing extra, no download, a refused --out
        raise UsageError(str(error)) from None
    except ExportError as error:
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
