"""``keras-convnets predict DIR IMAGE...``: the top-k classes of image files."""

import os
import sys

from keras_convnets.cli.common import DIR_HELP, PROG, UsageError, saved_model_dir


def add(commands):
    p = commands.add_parser("predict", help="top-k classes of image files",
                            description="Classify image files (JPEG, PNG, GIF, BMP or WebP) with DIR's SavedModel; "
                                        "images are resized to the model's input size.")
    p.add_argument("dir", help=DIR_HELP)
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top-k", type=int, default=3, help="how many classes to print per image (default 3)")
    p.set_defaults(func=run)


def _read_image(path, loaded):
    """``(uint8 [H, W, 3] image, None)`` of the file ``path`` as the SavedModel ``loaded`` takes it (resized for an
    export older than the any-size signature), or ``(None, why not)``."""
    import tensorflow as tf

    from keras_convnets.serving import saved_model

    if os.path.isdir(path):
        return None, "is a directory, not an image file (pass the image files: DIR/*.jpg)"
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except tf.errors.NotFoundError:
        return None, "no such file"
    except (tf.errors.OpError, ValueError):
        return None, "not a decodable image: JPEG, PNG, GIF, BMP or WebP"
    height, width = saved_model.input_size(loaded)
    if not saved_model.resizes_images(loaded) and tuple(image.shape[:2]) != (height, width):
        image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, (height, width))), 0, 255), tf.uint8)
    return image.numpy(), None


def run(args):
    import numpy as np

    from keras_convnets.models import imagenet
    from keras_convnets.serving import saved_model

    if args.top_k <= 0:
        raise UsageError(f"--top-k must be a positive integer; got {args.top_k}")
    try:
        loaded = saved_model.load(saved_model_dir(args.dir))
    except ValueError as error:
        raise UsageError(str(error)) from None
    names = imagenet.readable(saved_model.load_class_names(loaded))  # an older ImageNet export's "0".."999"
    paths, images, failed = [], [], 0
    for path in args.images:
        image, reason = _read_image(path, loaded)
        if image is None:
            print(f"{PROG}: error: {path}: {reason}", file=sys.stderr)
            failed += 1
            continue
        paths.append(path)
        images.append(image)
    if images:
        # An any-size export resizes and crops each image itself (the evaluation view), so images go one by one.
        rows = np.concatenate([saved_model.predict(loaded, image[None]) for image in images]) \
            if saved_model.resizes_images(loaded) else saved_model.predict(loaded, np.stack(images))
        for path, row in zip(paths, rows):
            top = np.argsort(-row)[:args.top_k]
            print(f"{path}: " + ", ".join(f"{names[i]} {row[i]:.3f}" for i in top))
    return 2 if failed else 0
