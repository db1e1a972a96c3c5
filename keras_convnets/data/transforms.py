"""Per-image transforms as TensorFlow ops on decoded uint8 images (tf.data maps and serving signatures).

- CIFAR-style training (:func:`augment`): zero-pad 4 pixels, random crop back to the image's size, random horizontal
  flip (He et al. 2016, §4.2); :func:`chain` runs a further per-image op after it, seeded by :func:`extra_seed`.
- ImageNet-style training (:func:`train_transform`): random-resized crop, then a random horizontal flip, resized to
  ``size x size`` (Szegedy et al. 2015, "Going deeper with convolutions", §6: crops of 8%-100% of the image's area
  with an aspect ratio in [3/4, 4/3]; the form torchvision's ``RandomResizedCrop`` and the ResNet / DenseNet
  reference code use: up to 10 tries, then a centre crop of the whole image clamped to the ratio range).
- Evaluation (:func:`eval_transform`): resize the short side to ``size / 0.875`` (256 for 224) and take the centre
  ``size x size`` crop (He et al. 2016, §3.4's single-crop testing, torchvision's reference). One function serves the
  pipeline and the exported SavedModel, so a client's photo of any size is seen exactly as the evaluation saw it.

Every function returns uint8 (rounded, clipped): normalization stays the model's first layer. Randomness is
stateless, keyed by a per-image ``seed`` (shape ``[2]`` int), so each image of a batch gets its own crop and a seeded
run repeats exactly.
"""

import math

from keras_convnets import checks

#: Szegedy et al. 2015 / torchvision's ``RandomResizedCrop`` ranges: fraction of the area, width / height.
IMAGENET_SCALE = (0.08, 1.0)
IMAGENET_RATIO = (3 / 4, 4 / 3)
#: Evaluation crop: the centre 224 of the short side resized to 256 (224 / 256 = 0.875).
EVAL_CROP_FRACTION = 0.875
#: Random-resized-crop tries before falling back to the centre crop.
CROP_ATTEMPTS = 10
#: Resize methods of the evaluation view: bilinear (torchvision's weights, our training), bicubic (timm's recipes).
INTERPOLATIONS = ("bilinear", "bicubic")


def to_uint8(images):
    """Rounds and clips float pixels in [0, 255] to uint8 (uint8 input is returned as it is)."""
    import tensorflow as tf

    if images.dtype == tf.uint8:
        return images
    return tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)


def to_rgb(images):
    """``[..., H, W, C]`` images with 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels as RGB: grey is
    repeated, alpha dropped (as ``tf.io.decode_image(channels=3)`` does). Other channel counts raise
    ``InvalidArgumentError`` with a one-line message. Works on a channel count known only when the graph runs."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    channels = tf.shape(images)[-1]
    check = tf.debugging.Assert((channels >= 1) & (channels <= 4), ["images need 1 to 4 channels; got", channels])
    with tf.control_dependencies([check]):
        rgb = tf.cond(channels >= 3, lambda: images[..., :3], lambda: tf.repeat(images[..., :1], 3, axis=-1))
    return tf.ensure_shape(rgb, images.shape[:-1].concatenate([3]))


def _resize(images, height, width, method: str = "bilinear"):
    """Bilinear (or ``method``) resize with antialiasing (as PIL and torchvision's tensor resize do when shrinking),
    skipped when the size is unchanged so a same-size image passes through bit-exact. Returns float32."""
    import tensorflow as tf

    shape = tf.shape(images)
    same = tf.logical_and(tf.equal(shape[-3], height), tf.equal(shape[-2], width))
    return tf.cond(same, lambda: tf.cast(images, tf.float32),
                   lambda: tf.image.resize(images, tf.stack([height, width]), method=method, antialias=True))


def eval_transform(images, size: int, crop_fraction: float = EVAL_CROP_FRACTION, interpolation: str = "bilinear"):
    """The evaluation view of ``[..., H, W, C]`` images of any size: short side resized to
    ``round(size / crop_fraction)`` (the long side scaled alike, truncated as torchvision does) with
    ``interpolation`` (one of :data:`INTERPOLATIONS`, antialiased), then the centre ``size x size`` window (top-left
    offset ``(excess) // 2``). ``crop_fraction=1.0`` resizes the short side to ``size`` (the CIFAR form: a 32x32
    image is returned unchanged). Works on one image or a batch of same-size images, on tensors whose height and
    width are known only when the graph runs (a serving signature). uint8 out (bicubic overshoot clipped)."""
    import tensorflow as tf

    checks.number_in("crop_fraction", crop_fraction, 0.0, 1.0, low_open=True)
    checks.one_of("interpolation", interpolation, INTERPOLATIONS)
    images = tf.convert_to_tensor(images)
    short_target = float(round(size / crop_fraction))
    shape = tf.shape(images)
    height, width = tf.cast(shape[-3], tf.float32), tf.cast(shape[-2], tf.float32)
    scale = short_target / tf.minimum(height, width)
    new_height = tf.cast(tf.maximum(tf.floor(height * scale + 1e-3), short_target), tf.int32)
    new_width = tf.cast(tf.maximum(tf.floor(width * scale + 1e-3), short_target), tf.int32)
    resized = _resize(images, new_height, new_width, interpolation)
    top, left = (new_height - size) // 2, (new_width - size) // 2
    cropped = resized[..., top:top + size, left:left + size, :]
    cropped = tf.ensure_shape(cropped, images.shape[:-3].concatenate([size, size, images.shape[-1]]))
    return to_uint8(cropped)


def serving_transform(images, size: int, crop_fraction: float = EVAL_CROP_FRACTION, interpolation: str = "bilinear"):
    """What a serving signature applies to raw client images ``[B, H, W, C]`` of any size and 1-4 channels:
    :func:`to_rgb` then :func:`eval_transform`."""
    return eval_transform(to_rgb(images), size, crop_fraction, interpolation)


def random_resized_crop_window(height, width, seed, scale: tuple[float, float] = IMAGENET_SCALE,
                               ratio: tuple[float, float] = IMAGENET_RATIO, attempts: int = CROP_ATTEMPTS):
    """``(top, left, crop_height, crop_width)`` int32 of a random-resized crop of a ``height x width`` image.

    ``attempts`` candidates are drawn at once: area ``U(scale) x H x W``, aspect ratio log-uniform in ``ratio``;
    the first that fits is used, at a uniformly random position. If none fits, the whole image is centre-cropped to
    the nearest aspect ratio in range. Depends only on the shape, so a JPEG can be decoded cropped.
    """
    import tensorflow as tf

    area_seed, ratio_seed, top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=4))
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    area = h * w * tf.random.stateless_uniform([attempts], area_seed, scale[0], scale[1])
    aspect = tf.exp(tf.random.stateless_uniform([attempts], ratio_seed, math.log(ratio[0]), math.log(ratio[1])))
    crop_w, crop_h = tf.round(tf.sqrt(area * aspect)), tf.round(tf.sqrt(area / aspect))
    fits = (crop_w >= 1) & (crop_w <= w) & (crop_h >= 1) & (crop_h <= h)
    first = tf.argmax(tf.cast(fits, tf.int32))  # the first candidate that fits (0 if none does)

    image_ratio = w / h
    fallback_w = tf.where(image_ratio > ratio[1], tf.round(h * ratio[1]), w)
    fallback_h = tf.where(image_ratio < ratio[0], tf.round(w / ratio[0]), h)
    found = tf.reduce_any(fits)
    crop_h = tf.cast(tf.where(found, crop_h[first], fallback_h), tf.int32)
    crop_w = tf.cast(tf.where(found, crop_w[first], fallback_w), tf.int32)
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    random_top = tf.random.stateless_uniform([], top_seed, 0, height - crop_h + 1, dtype=tf.int32)
    random_left = tf.random.stateless_uniform([], left_seed, 0, width - crop_w + 1, dtype=tf.int32)
    top = tf.where(found, random_top, (height - crop_h) // 2)
    left = tf.where(found, random_left, (width - crop_w) // 2)
    return top, left, crop_h, crop_w


def _crop_resize_flip(image, window, size: int, flip_seed):
    """``image[window]`` (``window``: top, left, height, width) resized to ``size x size``, randomly flipped."""
    top, left, crop_h, crop_w = window
    return _resize_and_flip(image[top:top + crop_h, left:left + crop_w, :], size, flip_seed)


def _resize_and_flip(crop, size: int, flip_seed):
    import tensorflow as tf

    resized = tf.image.resize(tf.cast(crop, tf.float32), [size, size], method="bilinear", antialias=True)
    flipped = tf.image.stateless_random_flip_left_right(resized, seed=flip_seed)
    return to_uint8(tf.ensure_shape(flipped, [size, size, 3]))


def _crop_and_flip_seeds(seed):
    import tensorflow as tf

    return tf.unstack(tf.random.experimental.stateless_split(seed, num=2))


def train_transform(image, size: int, seed, scale: tuple[float, float] = IMAGENET_SCALE,
                    ratio: tuple[float, float] = IMAGENET_RATIO):
    """Random-resized crop of one decoded ``[H, W, 3]`` image, resized to ``size x size``, randomly flipped."""
    import tensorflow as tf

    crop_seed, flip_seed = _crop_and_flip_seeds(seed)
    shape = tf.shape(image)
    window = random_resized_crop_window(shape[0], shape[1], crop_seed, scale, ratio)
    return _crop_resize_flip(image, window, size, flip_seed)


def decode_rgb(encoded):
    """A JPEG, PNG, GIF (first frame) or BMP file's bytes as a ``[H, W, 3]`` uint8 image (grey and alpha converted)."""
    import tensorflow as tf

    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])


def decode_train_transform(encoded, size: int, seed, jpeg: bool | None = None):
    """:func:`train_transform` of an encoded image (the same crop and flip; pixels at the window's edge may differ
    slightly, from chroma upsampling), with a JPEG decoded cropped (``decode_and_crop_jpeg`` decodes only the crop
    window's blocks); other formats are decoded whole, then cropped. ``jpeg``: whether every image is a JPEG
    (True), none is (False), or unknown (None: decided per image by a ``tf.cond``). The training pipeline uses it unless
    ``crop_decode_jpeg=False``; benchmarks/pipeline_imagenet.py measures both ways."""
    import tensorflow as tf

    def cropped_jpeg():
        crop_seed, flip_seed = _crop_and_flip_seeds(seed)
        shape = tf.image.extract_jpeg_shape(encoded)
        window = random_resized_crop_window(shape[0], shape[1], crop_seed)
        crop = tf.image.decode_and_crop_jpeg(encoded, tf.stack(window), channels=3)
        return _resize_and_flip(crop, size, flip_seed)

    def whole():
        return train_transform(decode_rgb(encoded), size, seed)

    if jpeg is None:
        return tf.cond(tf.io.is_jpeg(encoded), cropped_jpeg, whole)
    return cropped_jpeg() if jpeg else whole()


def augment(image, seed):
    """Zero-pad 4 pixels, random crop back to the image's size, random horizontal flip: one image, stateless
    randomness from ``seed`` (shape [2] int64), so each image of a batch is cropped and flipped on its own."""
    import tensorflow as tf

    crop_seed, flip_seed = _crop_and_flip_seeds(seed)
    shape = tf.shape(image)
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = tf.image.stateless_random_crop(padded, size=shape, seed=crop_seed)
    return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)


def extra_seed(seed):
    """The seed of the per-image op that follows the usual augmentation: ``seed`` folded with 1."""
    import tensorflow as tf

    return tf.random.experimental.stateless_fold_in(seed, 1)


def chain(first, then):
    """``(image, seed) -> image``: ``first`` (or nothing) with ``seed``, then ``then`` (or nothing) with
    :func:`extra_seed` of it."""
    def transform(image, seed):
        if first is not None:
            image = first(image, seed)
        return image if then is None else then(image, extra_seed(seed))
    return transform
