"""The modern recipe's data augmentation: RandAugment, TrivialAugment, random erasing (per image) and mixup / cutmix
(per batch), as pure TensorFlow functions with stateless randomness from a seed, like
:func:`keras_convnets.data.transforms.augment`.

Per-image ops take ``(uint8 image [H, W, 3], seed [2] int64)`` and return a uint8 image of the same shape; the
pipeline draws one seed per image from ``tf.data.Dataset.random(seed)``, so every image of a batch gets its own ops
and magnitudes and a seeded run sees the same augmentation again. Batch ops take ``(uint8 images [B, H, W, 3],
one-hot labels [B, C], seed [2])``.

- :func:`rand_augment` (Cubuk et al. 2020): ``N`` ops drawn uniformly (with replacement) from the 14 of
  torchvision's ``RandAugment`` (identity, shear x/y, translate x/y, rotate, brightness, colour, contrast, sharpness,
  posterize, solarize, autocontrast, equalize), each at magnitude ``M`` of 31 bins (torchvision's default bins;
  ``M=9`` is its default), a random sign for the signed ones.
- :func:`trivial_augment` (Müller & Hutter 2021, torchvision's ``TrivialAugmentWide``, the v2 recipe's
  ``ta_wide``): one op of the same 14, a magnitude drawn uniformly from the 31 bins, on the wide ranges.
- :func:`random_erasing` (Zhong et al. 2020, torchvision's ``RandomErasing``): with probability ``p`` a box of 2-33% of
  the area and aspect ratio 0.3-3.3 (log-uniform) is filled with ``fill``; up to 10 draws for a box that fits, else
  the image is kept. torchvision erases with 0 after normalization; our normalization is the model's first layer, so
  the pipeline fills with the dataset's mean pixel, which the model normalizes to 0: the same image.
- :func:`mix_batch`: mixup (Zhang et al. 2018) with ``lam ~ Beta(a, a)``, cutmix (Yun et al. 2019) with
  ``lam ~ Beta(a, a)`` and a box of area ``1 - lam`` (clipped at the border, ``lam`` recomputed from the clipped box),
  each image mixed with the batch reversed and the one-hot labels mixed by the same ``lam``: timm's ``Mixup`` in its
  default ``mode="batch"``; with both, one is chosen per batch with probability 0.5 (timm's ``switch_prob``).
  Mixed images are rounded back to uint8, the model's input type (at most 0.5/255 from the float mix).

Geometric ops fill with 0 and use nearest-neighbour sampling, colour ops follow PIL's ``ImageEnhance`` (the blend
factor ``1 + m``), as torchvision's ``functional`` ops do.

Why our own ops rather than Keras' preprocessing layers (checked on Keras 3.15 under the TF backend):
``keras.layers.RandAugment`` draws its ops once per call, so every image of a batch gets the same ops (and it has no
TrivialAugment mode); its seeded randomness is a stateful ``SeedGenerator``, not a per-image seed from the pipeline.
``keras.layers.RandomErasing`` does draw per image, but differently from the paper and torchvision: a single
``factor=p`` makes each image's probability itself uniform in [0, p] (so ``p`` erases ``p / 2`` of the images), and
its ``scale`` draws the box's two sides independently (the square roots of two uniform fractions) instead of an area
and a log-uniform aspect ratio. ``keras.layers.MixUp`` and ``CutMix`` draw one ``lam`` per *image* (timm and
torchvision draw one per batch) and pair images by a random permutation. All of them draw from a stateful
``SeedGenerator``, not from the per-image seed the pipeline hands out, so a seeded pipeline would not repeat them.
None of them is used here.
"""

import math

#: Magnitude bins of RandAugment / TrivialAugment (torchvision's ``num_magnitude_bins``).
BINS = 31
#: The ops, in torchvision's order.
OPS = ("identity", "shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness", "color", "contrast",
       "sharpness", "posterize", "solarize", "autocontrast", "equalize")
#: Switch probability between mixup and cutmix when both are on (timm's default).
SWITCH_PROB = 0.5
#: Random erasing's box: area fraction and aspect ratio ranges, attempts (torchvision's defaults).
ERASE_SCALE = (0.02, 0.33)
ERASE_RATIO = (0.3, 3.3)
ERASE_ATTEMPTS = 10


def _magnitudes(wide: bool):
    """``op -> (largest magnitude, signed)``: torchvision's ``_augmentation_space`` at the top bin, for an image of
    side 32 the translation is in pixels of the image's width (RandAugment: 150/331 of it; wide: 32 pixels)."""
    if wide:
        return {"shear_x": (0.99, True), "shear_y": (0.99, True), "translate_x": (32.0, True),
                "translate_y": (32.0, True), "rotate": (135.0, True), "brightness": (0.99, True),
                "color": (0.99, True), "contrast": (0.99, True), "sharpness": (0.99, True)}
    return {"shear_x": (0.3, True), "shear_y": (0.3, True), "translate_x": (150.0 / 331.0, True),
            "translate_y": (150.0 / 331.0, True), "rotate": (30.0, True), "brightness": (0.9, True),
            "color": (0.9, True), "contrast": (0.9, True), "sharpness": (0.9, True)}


def _affine(image, transform):
    """``image`` (float32 [H, W, 3]) sampled at ``transform`` (8 floats, output -> input pixel map, as
    ``ImageProjectiveTransformV3``), nearest neighbour, 0 outside."""
    import tensorflow as tf

    shape = tf.shape(image)[:2]
    out = tf.raw_ops.ImageProjectiveTransformV3(images=image[None], transforms=tf.reshape(transform, [1, 8]),
                                                output_shape=shape, fill_value=0.0, interpolation="NEAREST",
                                                fill_mode="CONSTANT")
    return out[0]


def _gray(image):
    """ITU-R 601-2 luma (PIL's ``convert("L")``, torchvision's ``rgb_to_grayscale``) of a float [H, W, 3] image."""
    import tensorflow as tf

    return tf.reduce_sum(image * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)


def _blend(image, other, factor):
    """PIL's ``ImageEnhance``: ``other + factor * (image - other)``, clipped to [0, 255]."""
    import tensorflow as tf

    return tf.clip_by_value(other + factor * (image - other), 0.0, 255.0)


def _sharpness(image, factor):
    """PIL's SMOOTH filter (3x3, centre 5, others 1, /13) on the interior, the border kept, then blended."""
    import tensorflow as tf

    kernel = tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    blurred = tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "VALID")[0]
    blurred = tf.round(blurred)
    interior = tf.pad(blurred, [[1, 1], [1, 1], [0, 0]])
    shape = tf.shape(image)
    mask = tf.pad(tf.ones(shape - [2, 2, 0]), [[1, 1], [1, 1], [0, 0]])
    degenerate = mask * interior + (1.0 - mask) * image
    return _blend(image, degenerate, factor)


def _autocontrast(image):
    """Each channel stretched to [0, 255] (a constant channel kept)."""
    import tensorflow as tf

    low = tf.reduce_min(image, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(image, axis=[0, 1], keepdims=True)
    scale = tf.where(high > low, 255.0 / tf.maximum(high - low, 1e-6), 1.0)
    offset = tf.where(high > low, low, 0.0)
    return tf.clip_by_value((image - offset) * scale, 0.0, 255.0)


def _equalize_channel(channel):
    """PIL's ``ImageOps.equalize`` of one uint8-valued channel (float [H, W])."""
    import tensorflow as tf

    values = tf.cast(channel, tf.int32)
    histogram = tf.math.bincount(tf.reshape(values, [-1]), minlength=256, maxlength=256)
    last = tf.gather(histogram, tf.reduce_max(tf.where(histogram > 0)[:, 0]))
    step = (tf.reduce_sum(histogram) - last) // 255
    cumulative = tf.concat([[0], tf.cumsum(histogram)[:-1]], 0)
    lut = tf.clip_by_value((cumulative + step // 2) // tf.maximum(step, 1), 0, 255)
    return tf.where(step == 0, channel, tf.cast(tf.gather(lut, values), tf.float32))


def apply_op(image, index, magnitude, wide=False):
    """Op ``OPS[index]`` at signed ``magnitude`` (in the op's own unit: shear factor, pixels or fraction of the width,
    degrees, enhancement ``m`` of factor ``1 + m``, bits kept, solarize threshold) on a float32 [H, W, 3] image in
    [0, 255]. ``wide``: translations are in pixels, else fractions of the width."""
    import tensorflow as tf

    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    m = tf.cast(magnitude, tf.float32)
    shift = m if wide else m * width

    def rotate():
        angle = m * math.pi / 180.0
        cos, sin = tf.cos(angle), tf.sin(angle)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        # output (x, y) -> input: rotate about the centre by -angle (counter-clockwise image rotation by angle).
        return _affine(image, tf.stack([cos, -sin, cx - cos * cx + sin * cy,
                                        sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0]))

    branches = [
        lambda: image,
        lambda: _affine(image, tf.stack([1.0, m, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])),
        lambda: _affine(image, tf.stack([1.0, 0.0, 0.0, m, 1.0, 0.0, 0.0, 0.0])),
        lambda: _affine(image, tf.stack([1.0, 0.0, shift, 0.0, 1.0, 0.0, 0.0, 0.0])),
        lambda: _affine(image, tf.stack([1.0, 0.0, 0.0, 0.0, 1.0, shift, 0.0, 0.0])),
        rotate,
        lambda: _blend(image, tf.zeros_like(image), 1.0 + m),
        lambda: _blend(image, _gray(image), 1.0 + m),
        lambda: _blend(image, tf.reduce_mean(tf.floor(_gray(image) + 0.5)), 1.0 + m),
        lambda: _sharpness(image, 1.0 + m),
        lambda: tf.floor(image / 2.0 ** (8.0 - m)) * 2.0 ** (8.0 - m),
        lambda: tf.where(image >= m, 255.0 - image, image),
        lambda: _autocontrast(image),
        lambda: tf.stack([_equalize_channel(image[..., c]) for c in range(3)], -1),
    ]
    out = tf.switch_case(tf.cast(index, tf.int32), branches)
    return tf.ensure_shape(out, image.shape)


def magnitude_of(index, level, wide=False):
    """The unsigned magnitude of op ``index`` at bin ``level`` of :data:`BINS` (torchvision's tables): linear up to
    the op's largest value; posterize keeps ``8 - round(level / (30 / 4))`` bits (wide: ``/ (30 / 6)``); solarize's
    threshold falls linearly from 255 to 0; the others ignore it."""
    import tensorflow as tf

    level = tf.cast(level, tf.float32)
    fraction = level / (BINS - 1)
    tops = _magnitudes(wide)
    table = tf.constant([tops.get(op, (0.0, False))[0] for op in OPS], tf.float32)
    value = tf.gather(table, index) * fraction
    bits = 8.0 - tf.round(level / ((BINS - 1) / (6.0 if wide else 4.0)))
    value = tf.where(tf.equal(index, OPS.index("posterize")), bits, value)
    return tf.where(tf.equal(index, OPS.index("solarize")), 255.0 * (1.0 - fraction), value)


def _signed(index, magnitude, seed, wide):
    import tensorflow as tf

    signed = tf.constant([_magnitudes(wide).get(op, (0.0, False))[1] for op in OPS])
    negative = tf.random.stateless_uniform([], seed) < 0.5
    return tf.where(tf.logical_and(tf.gather(signed, index), negative), -magnitude, magnitude)


def _to_uint8(image):
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def trivial_augment(image, seed):
    """TrivialAugmentWide: one op drawn uniformly from :data:`OPS`, its magnitude bin uniformly from 0-30, a random
    sign for signed ops. uint8 [H, W, 3] in and out; ``seed`` [2] int64."""
    import tensorflow as tf

    op_seed, level_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=3))
    index = tf.random.stateless_uniform([], op_seed, 0, len(OPS), dtype=tf.int32)
    level = tf.random.stateless_uniform([], level_seed, 0, BINS, dtype=tf.int32)
    magnitude = _signed(index, magnitude_of(index, level, wide=True), sign_seed, True)
    return _to_uint8(apply_op(tf.cast(image, tf.float32), index, magnitude, wide=True))


def rand_augment(image, seed, num_ops=2, magnitude=9):
    """RandAugment: ``num_ops`` ops drawn uniformly (with replacement) from :data:`OPS`, each at bin ``magnitude`` of
    0-30 with a random sign for signed ops, applied in turn. uint8 [H, W, 3] in and out."""
    import tensorflow as tf

    x = tf.cast(image, tf.float32)
    for op_seed in tf.unstack(tf.random.experimental.stateless_split(seed, num=num_ops)):
        pick_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(op_seed, num=2))
        index = tf.random.stateless_uniform([], pick_seed, 0, len(OPS), dtype=tf.int32)
        value = _signed(index, magnitude_of(index, magnitude), sign_seed, False)
        x = tf.round(tf.clip_by_value(apply_op(x, index, value), 0.0, 255.0))  # each op sees a uint8 image
    return _to_uint8(x)


def erase_box(seed, height, width):
    """``(top, left, box height, box width)`` of random erasing's box for an image of ``height x width``, or a
    zero-size box when none of :data:`ERASE_ATTEMPTS` draws fits (torchvision's rule)."""
    import tensorflow as tf

    area_seed, ratio_seed, top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=4))
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    areas = h * w * tf.random.stateless_uniform([ERASE_ATTEMPTS], area_seed, *ERASE_SCALE)
    log_ratio = tf.random.stateless_uniform([ERASE_ATTEMPTS], ratio_seed, math.log(ERASE_RATIO[0]),
                                            math.log(ERASE_RATIO[1]))
    ratios = tf.exp(log_ratio)
    box_h = tf.cast(tf.round(tf.sqrt(areas * ratios)), tf.int32)
    box_w = tf.cast(tf.round(tf.sqrt(areas / ratios)), tf.int32)
    fits = (box_h < height) & (box_w < width) & (box_h > 0) & (box_w > 0)
    found = tf.reduce_any(fits)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    box_h = tf.where(found, box_h[first], 0)
    box_w = tf.where(found, box_w[first], 0)
    top = tf.random.stateless_uniform([], top_seed, 0, height - box_h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], left_seed, 0, width - box_w + 1, dtype=tf.int32)
    return top, left, box_h, box_w


def _box_mask(top, left, box_h, box_w, height, width):
    """float32 [H, W, 1]: 1 inside the box, 0 elsewhere."""
    import tensorflow as tf

    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    inside = (rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w)
    return tf.cast(inside, tf.float32)[..., None]


def random_erasing(image, seed, p, fill=(0, 0, 0)):
    """With probability ``p``, a random box of the uint8 [H, W, 3] image filled with ``fill`` (an RGB triple)."""
    import tensorflow as tf

    apply_seed, box_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    top, left, box_h, box_w = erase_box(box_seed, height, width)
    applied = tf.random.stateless_uniform([], apply_seed) < p
    mask = _box_mask(top, left, box_h, box_w, height, width) * tf.cast(applied, tf.float32)
    filled = tf.cast(tf.reshape(tf.constant(fill, tf.float32), [1, 1, 3]), tf.float32)
    out = mask * filled + (1.0 - mask) * tf.cast(image, tf.float32)
    return _to_uint8(out)


def _beta(seed, alpha):
    """One Beta(alpha, alpha) sample, stateless: ``g1 / (g1 + g2)`` of two Gamma(alpha) samples."""
    import tensorflow as tf

    first, second = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    g1 = tf.random.stateless_gamma([], first, alpha)
    g2 = tf.random.stateless_gamma([], second, alpha)
    return g1 / tf.maximum(g1 + g2, 1e-12)


def mixup(images, labels, lam):
    """Each image (uint8 [B, H, W, 3]) and one-hot label mixed with the batch reversed: ``lam * x + (1 - lam) *
    x[::-1]``; the images rounded to uint8."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    mixed = lam * x + (1.0 - lam) * tf.reverse(x, [0])
    return _to_uint8(mixed), lam * labels + (1.0 - lam) * tf.reverse(labels, [0])


def cutmix_box(seed, lam, height, width):
    """``(top, left, box height, box width)``: a box of area ``(1 - lam) * H * W`` (sides ``sqrt(1 - lam)`` of the
    image's), centred uniformly, clipped at the border (timm's ``rand_bbox``)."""
    import tensorflow as tf

    cy_seed, cx_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    cut = tf.sqrt(1.0 - lam)
    cut_h = tf.cast(cut * tf.cast(height, tf.float32), tf.int32)
    cut_w = tf.cast(cut * tf.cast(width, tf.float32), tf.int32)
    cy = tf.random.stateless_uniform([], cy_seed, 0, height, dtype=tf.int32)
    cx = tf.random.stateless_uniform([], cx_seed, 0, width, dtype=tf.int32)
    top, bottom = tf.clip_by_value(cy - cut_h // 2, 0, height), tf.clip_by_value(cy + cut_h // 2, 0, height)
    left, right = tf.clip_by_value(cx - cut_w // 2, 0, width), tf.clip_by_value(cx + cut_w // 2, 0, width)
    return top, left, bottom - top, right - left


def cutmix(images, labels, seed, lam):
    """A box of each image (uint8 [B, H, W, 3]) replaced by the same box of the reversed batch's image; the labels
    mixed by the kept area's share (``lam`` recomputed from the clipped box)."""
    import tensorflow as tf

    height, width = tf.shape(images)[1], tf.shape(images)[2]
    top, left, box_h, box_w = cutmix_box(seed, lam, height, width)
    mask = tf.cast(_box_mask(top, left, box_h, box_w, height, width), images.dtype)[None]
    mixed = images * (1 - mask) + tf.reverse(images, [0]) * mask
    kept = 1.0 - tf.cast(box_h * box_w, tf.float32) / tf.cast(height * width, tf.float32)
    return mixed, kept * labels + (1.0 - kept) * tf.reverse(labels, [0])


def mix_batch(images, labels, seed, mixup_alpha=0.0, cutmix_alpha=0.0, switch_prob=SWITCH_PROB):
    """mixup and/or cutmix of one batch (timm's ``Mixup``, ``mode="batch"``, probability 1): with both alphas > 0,
    cutmix with probability ``switch_prob`` else mixup; ``labels`` are one-hot float [B, C]. Returns the batch and
    its soft labels, which sum to 1 per image."""
    import tensorflow as tf

    switch_seed, beta_seed, box_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=3))
    labels = tf.cast(labels, tf.float32)
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return images, labels
    if cutmix_alpha <= 0:
        return mixup(images, labels, _beta(beta_seed, mixup_alpha))
    if mixup_alpha <= 0:
        return cutmix(images, labels, box_seed, _beta(beta_seed, cutmix_alpha))
    use_cutmix = tf.random.stateless_uniform([], switch_seed) < switch_prob
    return tf.cond(use_cutmix, lambda: cutmix(images, labels, box_seed, _beta(beta_seed, cutmix_alpha)),
                   lambda: mixup(images, labels, _beta(beta_seed, mixup_alpha)))


def per_image_op(*, randaugment=None, trivialaugment=False, erasing=0.0, fill=(0, 0, 0)):
    """The ``(uint8 image, seed) -> uint8 image`` op of the per-image options (RandAugment ``(N, M)`` or
    TrivialAugment, then random erasing with probability ``erasing`` and ``fill``, each with its own seed
    split from ``seed``), or None when none is on. torchvision's order: the policy on the cropped image, erasing
    last."""
    import tensorflow as tf

    ops = []
    if randaugment:
        num_ops, magnitude = randaugment
        ops.append(lambda image, seed: rand_augment(image, seed, num_ops, magnitude))
    if trivialaugment:
        ops.append(trivial_augment)
    if erasing:
        ops.append(lambda image, seed: random_erasing(image, seed, erasing, fill))
    if not ops:
        return None

    def op(image, seed):
        for fn, op_seed in zip(ops, tf.unstack(tf.random.experimental.stateless_split(seed, num=len(ops)))):
            image = fn(image, op_seed)
        return image

    return op


def per_batch_op(num_classes, *, soft_labels=False, mixup=0.0, cutmix=0.0):
    """The ``(uint8 images, int64 labels, seed) -> (images, float32 labels)`` op of a training batch whose loss takes
    soft labels: one-hot labels, mixed by mixup / cutmix (:func:`mix_batch`, alphas ``mixup`` and ``cutmix``) when
    either is on; None when the labels stay integers."""
    import tensorflow as tf

    if not (soft_labels or mixup or cutmix):
        return None

    def op(images, labels, seed):
        one_hot = tf.one_hot(labels, num_classes)
        if not (mixup or cutmix):
            return images, one_hot
        return mix_batch(images, one_hot, tf.random.experimental.stateless_fold_in(seed, 2), mixup, cutmix)

    return op


def soft_labels(ds, num_classes):
    """A batched ``(uint8 images, int64 labels)`` dataset with one-hot float32 labels: the evaluation pipeline of a
    run trained on soft labels (the training one gets them from :func:`per_batch_op`)."""
    import tensorflow as tf

    return ds.map(lambda images, labels: (images, tf.one_hot(labels, num_classes)))
