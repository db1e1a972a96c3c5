"""SavedModel export that serves raw images, written atomically and checked after writing.

The export is a plain ``tf.Module`` saved with ``tf.saved_model.save`` (works under Keras 3 and tf-keras alike;
``keras.models.load_model`` cannot read SavedModels in Keras 3, see CONTRIBUTING.md, "Pitfalls"). Signatures:

- ``serving_default``: ``images`` uint8 ``[batch, H, W, 3]`` → ``{"probabilities": float32 [batch, classes]}``;
- ``class_names``: no input → ``{"class_names": string [classes]}``;

and ``assets/labels.txt`` holds the class names, one per line, for TF Serving users.
"""

import glob
import os
import shutil
import tempfile

import numpy as np

LABELS_FILE = "labels.txt"
SIGNATURE_INPUT = "images"
SIGNATURE_OUTPUT = "probabilities"


class ExportError(RuntimeError):
    """The reloaded SavedModel does not reproduce the in-memory model."""


class SavedModelError(ValueError):
    """A directory that is not a loadable SavedModel of this package (or does not fit the data it is given)."""


def load(path):
    """``tf.saved_model.load(path)`` checked to be one of our exports: a :class:`SavedModelError` (one line) for a
    truncated ``saved_model.pb``, missing variables, or a SavedModel without our two signatures."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        saved_model = tf.saved_model.load(path)
    except (OSError, ValueError, DecodeError, tf.errors.OpError) as error:
        reason = " ".join(str(error).split())[:160]
        raise SavedModelError(f"{path} is not a loadable SavedModel (truncated or missing files: {reason})") from None
    missing = [name for name in ("serving_default", "class_names") if name not in saved_model.signatures]
    if missing:
        raise SavedModelError(f"{path} is not a keras-convnets SavedModel: it has no {' or '.join(missing)} "
                              "signature (export it with keras_convnets.export_saved_model)")
    return saved_model


def input_size(saved_model):
    """``(height, width)`` of the images a loaded SavedModel serves."""
    spec = saved_model.signatures["serving_default"].structured_input_signature[1][SIGNATURE_INPUT]
    return tuple(spec.shape[1:3])


def _serving_module(model, names, labels_path):
    import tensorflow as tf

    height, width, channels = (int(d) for d in model.input_shape[1:])
    module = tf.Module()
    module.model = model
    module.labels_file = tf.saved_model.Asset(labels_path)

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, channels], tf.uint8, name=SIGNATURE_INPUT)])
    def serve(images):
        return {SIGNATURE_OUTPUT: tf.cast(model(images, training=False), tf.float32)}

    @tf.function(input_signature=[])
    def class_names():
        return {"class_names": tf.constant(names)}

    module.serve, module.class_names = serve, class_names
    return module


def predict(saved_model, images, batch_size=256):
    """Probabilities of a loaded SavedModel's ``serving_default`` for a uint8 array, in batches."""
    import tensorflow as tf

    fn = saved_model.signatures["serving_default"]
    outputs = [fn(**{SIGNATURE_INPUT: tf.constant(images[i:i + batch_size], tf.uint8)})[SIGNATURE_OUTPUT].numpy()
               for i in range(0, len(images), batch_size)]
    return np.concatenate(outputs)


def evaluate_saved_model(path, dataset, split="test", *, data_dir=None, batch_size=256):
    """``(accuracy, count)`` of the SavedModel at ``path`` on a tfds split of raw uint8 images.

    A :class:`SavedModelError` when the model's classes or input size are not the dataset's: its score would mean
    nothing."""
    import tensorflow as tf

    from keras_convnets.training import data

    saved_model = load(path)
    info = data.dataset_info(dataset, data_dir)
    classes, image_size = len(data.class_names(info)), tuple(info.features["image"].shape[:2])
    model_classes = len(load_class_names(saved_model))
    if model_classes != classes:
        raise SavedModelError(f"{path} predicts {model_classes} classes but {dataset} has {classes}: it was not "
                              f"trained on {dataset} (pass the --dataset it was trained on)")
    if input_size(saved_model) != image_size:
        raise SavedModelError(f"{path} takes {input_size(saved_model)[0]}x{input_size(saved_model)[1]} images but "
                              f"{dataset}'s are {image_size[0]}x{image_size[1]}")
    fn = saved_model.signatures["serving_default"]
    correct = count = 0
    for images, labels in data.load_dataset(dataset, split, batch_size=batch_size, training=False,
                                            data_dir=data_dir, cache=False).as_numpy_iterator():
        predicted = fn(**{SIGNATURE_INPUT: tf.constant(images)})[SIGNATURE_OUTPUT].numpy().argmax(-1)
        correct += int((predicted == labels).sum())
        count += len(labels)
    return correct / max(count, 1), count


def load_class_names(saved_model):
    """The class names stored in a loaded SavedModel."""
    return [name.decode() for name in saved_model.signatures["class_names"]()["class_names"].numpy()]


def _aside_dirs(path):
    return glob.glob(os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.old-*"))


def recover(path):
    """Puts back a SavedModel left aside by an export killed between its two renames, and removes the temporary
    directories of killed exports. Call it only when no other export into ``path`` runs (the run lock)."""
    path = os.path.abspath(path)
    for aside in sorted(_aside_dirs(path)):
        previous = os.path.join(aside, "previous")
        if not os.path.exists(path) and os.path.isfile(os.path.join(previous, "saved_model.pb")):
            os.rename(previous, path)
            print(f"Restored {path} left aside by an interrupted export", flush=True)
        shutil.rmtree(aside, ignore_errors=True)
    for tmp in glob.glob(os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-*")):
        shutil.rmtree(tmp, ignore_errors=True)


def export_saved_model(model, path, class_names, check_images=None, atol=1e-3):
    """Writes ``model`` (uint8 images in, probabilities out) as a SavedModel at ``path`` and returns ``path``.

    The SavedModel is written to a temporary directory beside ``path``, reloaded, and its predictions on
    ``check_images`` (uint8, default: 8 random images) compared with ``model``'s; only then does it replace
    ``path``, so a failed export never replaces a good one. The replacement renames the old one aside, the new one
    in, then deletes the old: a kill between the renames leaves the old one aside, which :func:`recover` (run first
    thing here) puts back.
    """
    import tensorflow as tf

    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    recover(path)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    try:
        labels_path = os.path.join(tmp, LABELS_FILE)
        with open(labels_path, "w") as f:
            f.write("".join(f"{name}\n" for name in class_names))
        export_dir = os.path.join(tmp, "saved_model")
        module = _serving_module(model, list(class_names), labels_path)
        tf.saved_model.save(module, export_dir,
                            signatures={"serving_default": module.serve, "class_names": module.class_names})
        if check_images is None:
            rng = np.random.default_rng(0)
            check_images = rng.integers(0, 256, (8,) + tuple(model.input_shape[1:]), dtype=np.uint8)
        check_images = np.asarray(check_images, np.uint8)
        expected = np.asarray(model(check_images, training=False), np.float32)
        reloaded = tf.saved_model.load(export_dir)
        actual = predict(reloaded, check_images)
        if not np.allclose(actual, expected, atol=atol) or load_class_names(reloaded) != list(class_names):
            raise ExportError(f"the reloaded SavedModel does not reproduce the model (max difference "
                              f"{np.max(np.abs(actual - expected)):.3g}); {path} was left unchanged")
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
            os.rename(path, os.path.join(old, "previous"))
        os.rename(export_dir, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
