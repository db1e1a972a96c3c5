"""The modern recipe's augmentation ops (keras_convnets/data/augment.py) as units on small synthetic images:
shapes and dtypes, seeded determinism, per-image draws, the ops' defining properties (mixup's ratio, cutmix's box
area, random erasing at P=0 and P=1, equalize's histogram, TrivialAugment's ops all reachable). Seconds."""

import numpy as np
import pytest
import tensorflow as tf

from keras_convnets.data import augment, transforms
from keras_convnets.training.recipes import Regularization

RNG = np.random.default_rng(0)
IMAGE = tf.constant(RNG.integers(0, 256, (32, 32, 3)), tf.uint8)
SEED = tf.constant([3, 4], tf.int64)


def _seed(i):
    return tf.constant([i, 7], tf.int64)


PER_IMAGE = [
    ("trivial_augment", augment.trivial_augment),
    ("rand_augment 2,9", lambda image, seed: augment.rand_augment(image, seed, 2, 9)),
    ("random_erasing 1.0", lambda image, seed: augment.random_erasing(image, seed, 1.0, (1, 2, 3))),
]


@pytest.mark.parametrize("name,op", PER_IMAGE, ids=[name for name, _ in PER_IMAGE])
def test_per_image_ops_keep_shape_and_dtype_repeat_under_a_seed_and_differ_between_seeds(name, op):
    out = op(IMAGE, SEED)
    assert out.dtype == tf.uint8 and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out.numpy(), op(IMAGE, SEED).numpy())
    outs = [op(IMAGE, _seed(i)).numpy() for i in range(8)]
    assert len({o.tobytes() for o in outs}) > 1, "different seeds give different augmentations"


def test_two_images_of_a_batch_get_different_ops_in_the_pipeline():
    """The pipeline's per-image seeds (``Dataset.random(seed).batch(2)``) make each image's op its own: eight copies
    of one image come out of one batch differently, and the same again from a second pipeline with the seed."""
    def batch(seed):
        images = tf.data.Dataset.from_tensors(IMAGE).repeat(8)
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        op = Regularization(trivialaugment=True, random_erasing=0.5).per_image_op()
        ds = tf.data.Dataset.zip((images, seeds)).map(lambda image, s: op(image, s)).batch(8)
        return next(iter(ds)).numpy()

    first = batch(0)
    assert len({image.tobytes() for image in first}) >= 6, "the images of one batch are augmented each on its own"
    np.testing.assert_array_equal(first, batch(0))
    assert not np.array_equal(first, batch(1))


def test_chain_keeps_the_crop_and_flip_of_a_run_without_the_extra_op():
    cropped = transforms.augment(IMAGE, SEED)
    identity = transforms.chain(transforms.augment, lambda image, seed: image)
    np.testing.assert_array_equal(identity(IMAGE, SEED).numpy(), cropped.numpy())


def test_every_trivial_augment_op_is_reachable_and_its_magnitude_in_torchvision_range():
    picked = set()
    for i in range(300):
        op_seed = tf.unstack(tf.random.experimental.stateless_split(_seed(i), num=3))[0]
        picked.add(int(tf.random.stateless_uniform([], op_seed, 0, len(augment.OPS), dtype=tf.int32)))
    assert picked == set(range(len(augment.OPS)))
    index = tf.constant
    assert float(augment.magnitude_of(index(augment.OPS.index("rotate")), 30, wide=True)) == pytest.approx(135.0)
    assert float(augment.magnitude_of(index(augment.OPS.index("rotate")), 30)) == pytest.approx(30.0)
    assert float(augment.magnitude_of(index(augment.OPS.index("posterize")), 30, wide=True)) == 2.0
    assert float(augment.magnitude_of(index(augment.OPS.index("posterize")), 30)) == 4.0
    assert float(augment.magnitude_of(index(augment.OPS.index("solarize")), 0)) == 255.0
    assert float(augment.magnitude_of(index(augment.OPS.index("identity")), 30)) == 0.0


def _op(name, magnitude, image=IMAGE, wide=False):
    return augment.apply_op(tf.cast(image, tf.float32), tf.constant(augment.OPS.index(name)), magnitude,
                            wide=wide).numpy()


def test_ops_do_what_they_are_named_for():
    x = IMAGE.numpy().astype(np.float32)
    np.testing.assert_array_equal(_op("identity", 0.0), x)
    np.testing.assert_array_equal(_op("translate_x", 4.0, wide=True)[:, :-4], x[:, 4:])  # shifted 4 pixels left
    np.testing.assert_array_equal(_op("translate_x", 4.0, wide=True)[:, -4:], 0)        # filled with 0
    np.testing.assert_array_equal(_op("posterize", 4.0) % 16, 0)
    solarized = _op("solarize", 128.0)
    np.testing.assert_array_equal(solarized, np.where(x >= 128, 255 - x, x))
    np.testing.assert_allclose(_op("brightness", -0.5), np.clip(x * 0.5, 0, 255))
    rotated = _op("rotate", 90.0)
    assert any(np.array_equal(np.round(rotated), np.rot90(x, k=k)) for k in (1, -1))
    dark = tf.constant(RNG.integers(50, 100, (32, 32, 3)), tf.uint8)
    stretched = _op("autocontrast", 0.0, dark)
    assert stretched.min() == 0 and stretched.max() == 255
    equalized = _op("equalize", 0.0, dark)
    assert equalized.max() > 230 and equalized.min() < 30, "equalize spreads a narrow histogram over the range"
    order = np.argsort(dark.numpy()[..., 0].ravel(), kind="stable")
    assert np.all(np.diff(equalized[..., 0].ravel()[order]) >= 0), "equalize is a monotone relabelling (PIL's LUT)"


def test_random_erasing_with_p0_is_the_identity_and_with_p1_fills_one_box():
    for i in range(5):
        np.testing.assert_array_equal(augment.random_erasing(IMAGE, _seed(i), 0.0, (1, 2, 3)).numpy(), IMAGE.numpy())
    for i in range(5):
        out = augment.random_erasing(IMAGE, _seed(i), 1.0, (1, 2, 3)).numpy()
        changed = np.any(out != IMAGE.numpy(), axis=-1)
        filled = np.all(out == (1, 2, 3), axis=-1)
        rows, cols = np.nonzero(filled)
        assert rows.size, "P=1 erases a box"
        box = np.zeros_like(filled)
        box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
        np.testing.assert_array_equal(filled, box)  # exactly one axis-aligned box is filled
        assert not np.any(changed & ~box)
        area = box.sum() / box.size
        assert 0.02 * 0.8 <= area <= 0.33 * 1.2  # torchvision's scale (rounding of the sides on a 32x32 image)


def _batch():
    """Two constant images (0 and 200) per half: a pixel's value says how much of each it holds."""
    images = np.zeros((4, 16, 16, 3), np.uint8)
    images[2:] = 200
    return tf.constant(images), tf.one_hot([0, 1, 2, 3], 5)


def test_mixup_labels_sum_to_1_and_the_ratio_is_recovered_from_the_pixels():
    images, labels = _batch()
    for i in range(5):
        lam = float(augment._beta(_seed(i), 0.2))
        mixed, soft = augment.mixup(images, labels, lam)
        soft = soft.numpy()
        np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)
        # image 0 (zeros) mixed with the reversed batch's image 0, i.e. image 3 (200): 200 * (1 - lam)
        recovered = 1.0 - float(mixed.numpy()[0].mean()) / 200.0
        assert recovered == pytest.approx(lam, abs=0.5 / 200 + 1e-6)
        assert soft[0, 0] == pytest.approx(lam, abs=1e-6) and soft[0, 3] == pytest.approx(1 - lam, abs=1e-6)


def test_cutmix_box_area_equals_the_label_weight():
    images, labels = _batch()
    for i in range(8):
        lam = augment._beta(_seed(i), 1.0)
        mixed, soft = augment.cutmix(images, labels, _seed(100 + i), lam)
        pasted = float((mixed.numpy()[0, ..., 0] == 200).mean())  # image 0's share taken from image 3
        np.testing.assert_allclose(soft.numpy().sum(1), 1.0, atol=1e-6)
        assert soft.numpy()[0, 3] == pytest.approx(pasted, abs=1e-6)
        assert soft.numpy()[0, 0] == pytest.approx(1 - pasted, abs=1e-6)


def test_mix_batch_switches_between_mixup_and_cutmix_per_batch_and_repeats_under_a_seed():
    images, labels = _batch()
    kinds = set()
    for i in range(20):
        mixed, soft = augment.mix_batch(images, labels, _seed(i), mixup_alpha=0.2, cutmix_alpha=1.0)
        again, _ = augment.mix_batch(images, labels, _seed(i), mixup_alpha=0.2, cutmix_alpha=1.0)
        np.testing.assert_array_equal(mixed.numpy(), again.numpy())
        values = set(np.unique(mixed.numpy()[0]))
        kinds.add("cutmix" if values <= {0, 200} else "mixup")
        np.testing.assert_allclose(soft.numpy().sum(1), 1.0, atol=1e-6)
    assert kinds == {"cutmix", "mixup"}
    same, soft = augment.mix_batch(images, labels, SEED)
    np.testing.assert_array_equal(same.numpy(), images.numpy())  # both alphas 0: one-hot labels, images as they were


def test_soft_labels_pipeline_is_one_hot_without_mixing():
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((6, 8, 8, 3), np.uint8), np.arange(6) % 3)).batch(3)
    images, labels = next(iter(augment.soft_labels(ds, 3)))
    np.testing.assert_array_equal(labels.numpy(), np.eye(3))


def test_the_batch_op_is_one_hot_and_mixes_only_when_asked():
    images = tf.constant(np.arange(3 * 4 * 4 * 3).reshape(3, 4, 4, 3) % 256, tf.uint8)
    labels = tf.constant([0, 1, 2], tf.int64)
    assert Regularization().per_batch_op(3) is None, "sparse labels stay as they are"
    same, one_hot = Regularization(label_smoothing=0.1).per_batch_op(3)(images, labels, SEED)
    np.testing.assert_array_equal(one_hot.numpy(), np.eye(3))
    np.testing.assert_array_equal(same.numpy(), images.numpy())
    mixed, soft = Regularization(mixup=1.0).per_batch_op(3)(images, labels, SEED)
    assert not np.array_equal(mixed.numpy(), images.numpy()) and not np.array_equal(soft.numpy(), np.eye(3))
    np.testing.assert_allclose(soft.numpy().sum(1), 1.0, atol=1e-6)


def test_the_folder_pipeline_applies_the_op_after_its_own_crops_which_stay_the_same(tmp_path):
    from keras_convnets.data import catalog, pipelines
    from tests.test_datasets import _write_png

    image = np.random.default_rng(2).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    for name in ("a", "b"):
        for i in range(4):
            _write_png(str(tmp_path / name / f"{i}.png"), image)
    description = catalog.describe(str(tmp_path), image_size=32, statistics=catalog.imagenet_statistics("x"),
                                    holdout_fraction=0.25)
    fill = (1, 2, 3)
    plain = np.concatenate([x.numpy() for x, _ in pipelines.train_dataset(description, 8, seed=5)])
    erase = Regularization(random_erasing=1.0).per_image_op(fill)
    erased = np.concatenate([x.numpy() for x, _ in pipelines.train_dataset(description, 8, seed=5, per_image=erase)])
    boxes = np.all(erased == fill, axis=-1)
    assert all(box.any() for box in boxes), "every image got its box"
    np.testing.assert_array_equal(erased[~boxes], plain[~boxes])  # the same crops outside the boxes
