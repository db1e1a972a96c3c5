"""SavedModel export that serves raw images, written atomically and checked after writing.

The export is a plain ``tf.Module`` saved with ``tf.saved_model.save`` (works under Keras 3 and tf-keras alike;
``keras.models.load_model`` cannot read SavedModels in Keras 3, see CONTRIBUTING.md, "Pitfalls"). A model on another
Keras backend (JAX) is exported by a TensorFlow process (:func:`_write_through_tensorflow`): the model's
architecture and weights are written to a temporary directory, a ``KERAS_BACKEND=tensorflow`` subprocess rebuilds
the same model from them (every model is the same function on every backend: ``tests/test_backends.py``) and writes
and checks the SavedModel exactly as a TensorFlow run does, and this process then checks the SavedModel against the
model it was given. So the file is the same plain TensorFlow graph whichever backend trained the weights: every
signature below, TF Serving, and the ONNX / LiteRT / OpenVINO conversions of :mod:`keras_convnets.serving.formats`
(which freeze that graph) work alike. Keras' own ``model.export(format="tf_saved_model")`` from JAX was not
used: it wraps the model in jax2tf's ``XlaCallModule`` op (StableHLO compiled for the exporting platform), which
tf2onnx has no converter for, and jax2tf's TensorFlow-graph mode is deprecated. Signatures:

- ``serving_default``: ``images`` uint8 ``[batch, H, W, C]`` of any size and 1-4 channels (grey, grey + alpha, RGB,
  RGBA) → ``{"probabilities": float32 [batch, classes]}``. It applies the evaluation view itself
  (:func:`keras_convnets.data.transforms.serving_transform` at the model's input size and the training data's
  crop fraction: 1.0 for CIFAR-style models, whose 32x32 images pass unchanged, 0.875 for ImageNet-style ones, a
  converted checkpoint's own, e.g. 224/256; bilinear resize unless the weights expect another), so a client sends a
  photo as it is. An empty batch returns ``[0, classes]``; another channel count is an
  ``InvalidArgumentError`` saying "images need 1 to 4 channels";
- ``preprocessed``: ``images`` uint8 ``[batch, S, S, 3]`` already in the evaluation view (the evaluation pipeline's
  output) → the same output, so evaluating never crops twice;
- ``serving_bytes``: ``image_bytes`` string ``[batch]`` of encoded images (JPEG, PNG, GIF's first frame, BMP or
  WebP; grey and alpha converted to RGB) → the same output, each decoded and put through ``serving_default``'s view.
  TF Serving's REST API takes them as ``{"b64": ...}`` (the name ends in ``_bytes``, as Google Cloud's prediction
  service wants). Bytes of another format are an ``InvalidArgumentError`` naming the first bad item ("image_bytes
  item [i] is not a JPEG, PNG, GIF, BMP or WebP image"), a truncated file the decoder's own one: the request fails,
  the server does not;
- ``class_names``: no input → ``{"class_names": string [classes]}``;

and ``assets/labels.txt`` holds the class names, one per line, for TF Serving users. The module's ``image_size``,
``crop_fraction`` and ``interpolation`` variables record the transform (an export older than ``interpolation``
resizes bilinear).

Precision: the SavedModel holds the traced graph, float32 variables and ops, whatever the run's precision. The oneDNN
bf16 rewrite of a ``--precision bf16`` CPU run is a grappler option of the process that *runs* a graph, not part of
the file: the SavedModel computes in float32 wherever it is loaded (the option is off by default, in TF Serving too)
unless that process turns it on itself. A run under Keras' ``mixed_*`` policies exports its layers' own dtypes
(float32 variables, reduced-precision compute) and casts the probabilities to float32. The export and its check run
with the rewrite off, so the check compares float32 with float32.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from keras_convnets import checks, publish
from keras_convnets.data import transforms
from keras_convnets.runtime import precision

LABELS_FILE = "labels.txt"
SIGNATURE_INPUT = "images"
SIGNATURE_OUTPUT = "probabilities"
#: The signature of images already resized and cropped to the model's input.
PREPROCESSED = "preprocessed"
#: The signature of encoded image files, and its input.
SERVING_BYTES = "serving_bytes"
BYTES_INPUT = "image_bytes"
#: What the ``serving_bytes`` signature decodes: each format's identifying bytes, as ``(offset, bytes)`` pairs.
IMAGE_MAGIC = {"JPEG": ((0, b"\xff\xd8\xff"),), "PNG": ((0, b"\x89PNG\r\n\x1a\n"),), "GIF": ((0, b"GIF8"),),
               "BMP": ((0, b"BM"),), "WebP": ((0, b"RIFF"), (8, b"WEBP"))}
#: How each format's file ends when it is whole: JPEG's end-of-image marker, PNG's IEND chunk, GIF's trailer. (BMP
#: and WebP record their length in their header: :func:`_complete`.)
IMAGE_TRAILERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82", "GIF": b";"}
#: What ``serving_default`` takes, as its errors say.
IMAGES_CONTRACT = "images must be uint8 [batch, height, width, channels] with height and width >= 1 and 1 to 4 channels"


class ExportError(RuntimeError):
    """A written model does not reproduce the model it was written from (a reloaded SavedModel, a converted file):
    the one export error of the package (:mod:`keras_convnets.serving.formats` raises it too)."""


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
    """``(height, width)`` of the model's input: what ``preprocessed`` takes, or what an export older than it
    (fixed-size ``serving_default``, no resizing) takes."""
    name = PREPROCESSED if PREPROCESSED in saved_model.signatures else "serving_default"
    spec = saved_model.signatures[name].structured_input_signature[1][SIGNATURE_INPUT]
    return tuple(spec.shape[1:3])


def resizes_images(saved_model) -> bool:
    """Whether ``serving_default`` takes images of any size (it resizes and crops them itself)."""
    return PREPROCESSED in saved_model.signatures


def crop_fraction(saved_model) -> float:
    """The evaluation crop fraction a loaded SavedModel applies (1.0 for an export older than the record)."""
    recorded = getattr(saved_model, "crop_fraction", None)
    return 1.0 if recorded is None else float(recorded.numpy())


def interpolation(saved_model) -> str:
    """The resize method of a loaded SavedModel's evaluation view ("bilinear" for an export older than the record)."""
    recorded = getattr(saved_model, "interpolation", None)
    return "bilinear" if recorded is None else recorded.numpy().decode()


def _known_image_format(image_bytes):
    """Per item of a string batch: whether its leading bytes are those of a format ``tf.io.decode_image`` reads."""
    import tensorflow as tf

    padded = tf.strings.join([image_bytes, tf.constant(b"\0" * 12)])  # substr past the end would be an error

    def matches(pairs):
        found = [tf.equal(tf.strings.substr(padded, offset, len(magic)), magic) for offset, magic in pairs]
        return tf.reduce_all(tf.stack(found), axis=0)

    return tf.reduce_any(tf.stack([matches(pairs) for pairs in IMAGE_MAGIC.values()]), axis=0)


def _is_format(image_bytes, name):
    import tensorflow as tf

    offset, magic = IMAGE_MAGIC[name][0]
    return tf.equal(tf.strings.substr(tf.strings.join([image_bytes, b"\0" * 12]), offset, len(magic)), magic)


def _complete(image_bytes):
    """Per item of a string batch of known formats: whether the file is whole, so a truncated upload is refused by
    index instead of failing inside the decoder: JPEG, PNG and GIF end with their trailer (:data:`IMAGE_TRAILERS`),
    BMP and WebP are at least as long as their header says."""
    import tensorflow as tf

    length = tf.strings.length(image_bytes)
    whole = tf.ones_like(length, tf.bool)
    for name, trailer in IMAGE_TRAILERS.items():
        end = tf.strings.substr(image_bytes, tf.maximum(length - len(trailer), 0), tf.fill(tf.shape(length),
                                                                                           len(trailer)))
        whole &= ~_is_format(image_bytes, name) | tf.equal(end, trailer)
    padded = tf.strings.join([image_bytes, b"\0" * 12])
    for name, offset, extra in (("BMP", 2, 0), ("WebP", 4, 8)):  # a little-endian uint32 length field
        field = tf.reshape(tf.io.decode_raw(tf.strings.substr(padded, offset, 4), tf.int32, little_endian=True),
                           [-1])  # [batch] (an empty batch too)
        declared = tf.bitwise.bitwise_and(tf.cast(field, tf.int64), 0xFFFFFFFF)  # the field is unsigned
        whole &= ~_is_format(image_bytes, name) | (declared + extra <= tf.cast(length, tf.int64))
    return whole


def _assert_all(flags, message):
    """An op asserting every item of ``flags`` [batch] is true; its message names the first that is not."""
    import tensorflow as tf

    first_bad = tf.argmin(tf.concat([tf.cast(flags, tf.int32), [1]], 0), output_type=tf.int32)  # [1]: empty batch
    return tf.debugging.Assert(tf.reduce_all(flags), [f"{BYTES_INPUT} item", first_bad, message])


def _after(check, tensor, rank):
    """``tensor``, to be computed only after the op ``check`` (an assertion) passed, with static rank ``rank``. A
    reshape to its own shape, not an identity (grappler drops an identity and its control input with it, and later
    ops then fail on what the assertion was there to refuse), nor ``ensure_shape`` (checked when the function is
    instantiated, before any assertion runs)."""
    import tensorflow as tf

    with tf.control_dependencies([check]):
        tensor = tf.reshape(tensor, tf.shape(tensor))
    tensor.set_shape([None] * rank)
    return tensor


def checked_bytes(image_bytes):
    """``image_bytes`` (string, any shape) as a ``[batch]`` of whole image files of a known format, or an
    ``InvalidArgumentError`` saying what is wrong: not a 1-D batch, or the first item that is not a JPEG, PNG, GIF,
    BMP or WebP file, or is truncated."""
    import tensorflow as tf

    rank = tf.debugging.Assert(tf.equal(tf.rank(image_bytes), 1), [
        f"{BYTES_INPUT} must be a 1-D batch of encoded images, [batch] strings; got shape", tf.shape(image_bytes)])
    image_bytes = _after(rank, image_bytes, 1)
    formats = _assert_all(_known_image_format(image_bytes), "is not a JPEG, PNG, GIF, BMP or WebP image")
    image_bytes = _after(formats, image_bytes, 1)
    whole = _assert_all(_complete(image_bytes), "is truncated: the file ends before its image data does")
    return _after(whole, image_bytes, 1)


def checked_images(images):
    """``images`` (uint8, any shape) as ``[batch, height, width, channels]``, or an ``InvalidArgumentError`` saying
    what ``serving_default`` takes (:data:`IMAGES_CONTRACT`) and the shape it got. An empty batch passes."""
    import tensorflow as tf

    rank = tf.debugging.Assert(tf.equal(tf.rank(images), 4), [IMAGES_CONTRACT + "; got shape", tf.shape(images)])
    images = _after(rank, images, 4)
    shape = tf.shape(images)
    sizes = tf.debugging.Assert((shape[0] == 0) | ((shape[1] >= 1) & (shape[2] >= 1)),
                                [IMAGES_CONTRACT + "; got shape", shape])
    return _after(sizes, images, 4)


def decode_batch(image_bytes, size, fraction, method="bilinear"):
    """``uint8 [batch, size, size, 3]``: each encoded image of ``image_bytes`` (string ``[batch]``) decoded to RGB
    and put through the evaluation view (:func:`keras_convnets.data.transforms.eval_transform`); an
    ``InvalidArgumentError`` naming the first item that is not a whole image file (:func:`checked_bytes`)."""
    import tensorflow as tf

    image_bytes = checked_bytes(image_bytes)
    return tf.map_fn(lambda encoded: transforms.eval_transform(transforms.decode_rgb(encoded), size, fraction, method),
                     image_bytes, fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8))


def record_view(module, labels_path, size, fraction, method):
    """Puts on an export's ``module`` what a reader of the SavedModel needs besides its signatures: the labels file
    as an asset and the evaluation view (``image_size``, ``crop_fraction``, ``interpolation`` variables)."""
    import tensorflow as tf

    module.labels_file = tf.saved_model.Asset(labels_path)
    module.image_size = tf.Variable(size, trainable=False, name="image_size")
    module.crop_fraction = tf.Variable(float(fraction), trainable=False, name="crop_fraction")
    module.interpolation = tf.Variable(method, trainable=False, name="interpolation")


def _serving_module(model, names, labels_path, fraction, method="bilinear"):
    import tensorflow as tf

    size, width, channels = (int(d) for d in model.input_shape[1:])
    if size != width or channels != 3:
        raise ValueError(f"the model must take square RGB images to be exported; its input is "
                         f"{tuple(model.input_shape[1:])}")
    module = tf.Module()
    # The variables, not the Keras model: tracking the model makes the save walk every layer's object graph (89k
    # children for DenseNet-121), and a server needs only the signatures and the variables they capture.
    module.model_variables = list(model.variables)
    record_view(module, labels_path, size, fraction, method)

    # One traced forward pass that the three image signatures call instead of tracing the model each; all three feed
    # it the same uint8 [batch, size, size, 3] view. With the line above, it halves an export's time
    # (benchmarks/RESULTS.md, its first table).
    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
    def classify(images):
        return tf.cast(model(images, training=False), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.uint8, name=SIGNATURE_INPUT)])
    def serve(images):
        rgb = transforms.to_rgb(checked_images(images))  # checks the channel count even for an empty batch
        probabilities = tf.cond(tf.shape(rgb)[0] > 0,
                                lambda: classify(transforms.eval_transform(rgb, size, fraction, method)),
                                lambda: tf.zeros([0, len(names)], tf.float32))
        return {SIGNATURE_OUTPUT: probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name=SIGNATURE_INPUT)])
    def preprocessed(images):
        return {SIGNATURE_OUTPUT: classify(images)}

    @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name=BYTES_INPUT)])
    def serve_bytes(image_bytes):
        images = decode_batch(image_bytes, size, fraction, method)
        probabilities = tf.cond(tf.shape(images)[0] > 0, lambda: classify(images),
                                lambda: tf.zeros([0, len(names)], tf.float32))
        return {SIGNATURE_OUTPUT: probabilities}

    @tf.function(input_signature=[])
    def class_names():
        return {"class_names": tf.constant(names)}

    module.serve, module.preprocessed, module.class_names = serve, preprocessed, class_names
    module.serve_bytes = serve_bytes
    return module


def signatures(module):
    """The signatures a serving module is saved with."""
    return {"serving_default": module.serve, PREPROCESSED: module.preprocessed, SERVING_BYTES: module.serve_bytes,
            "class_names": module.class_names}


def predict(saved_model, images, batch_size=256, signature="serving_default"):
    """Probabilities of a loaded SavedModel's ``signature`` for a uint8 array, in batches."""
    import tensorflow as tf

    fn = saved_model.signatures[signature]
    outputs = [fn(**{SIGNATURE_INPUT: tf.constant(images[i:i + batch_size], tf.uint8)})[SIGNATURE_OUTPUT].numpy()
               for i in range(0, len(images), batch_size)]
    return np.concatenate(outputs)


def load_class_names(saved_model):
    """The class names stored in a loaded SavedModel."""
    return [name.decode() for name in saved_model.signatures["class_names"]()["class_names"].numpy()]


def saved_model_dir(path: str) -> str:
    """``path`` itself if it is a SavedModel, else ``path/saved_model`` (a run directory): the one resolver of the
    commands that read a model; a :class:`SavedModelError` if neither holds one (a directory: say so)."""
    path = os.fspath(path)
    for candidate in (path, os.path.join(path, "saved_model")):
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
            return candidate
    raise SavedModelError(f"no SavedModel in {path} (expected {path}/saved_model.pb or "
                          f"{path}/saved_model/saved_model.pb)")


@contextlib.contextmanager
def tensorflow_logger_at(level: str):
    """TensorFlow's Python logger at ``level`` (``"WARNING"``, ``"ERROR"``) for the duration, restored after: the
    notices of a save or a converter ("Assets written to: <temporary directory>", TF1 deprecations) are not news to
    a user."""
    import tensorflow as tf

    logger = tf.get_logger()
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def export_saved_model(model, path, class_names, check_images=None, atol=1e-3, crop_fraction=1.0,
                       interpolation="bilinear"):
    """Writes ``model`` (uint8 images in, probabilities out) as a SavedModel at ``path`` and returns ``path``.

    Args:
        model: a Keras model taking uint8 ``[batch, S, S, 3]`` images (normalization inside) and returning
            probabilities.
        path: the SavedModel folder; refused (:class:`keras_convnets.publish.OutputExistsError`) if it exists and
            is not a SavedModel this package wrote (or an empty folder).
        class_names: one name per output.
        check_images: uint8 images the reloaded SavedModel must reproduce the model on (default: 8 random ones).
        atol: the largest probability difference accepted.
        crop_fraction: the evaluation crop ``serving_default`` applies (the training data's
            :attr:`~keras_convnets.data.catalog.DatasetDescription.crop_fraction`, or pretrained weights' own).
        interpolation: how it resizes (one of :data:`keras_convnets.data.transforms.INTERPOLATIONS`).

    Returns:
        ``path``. The SavedModel is written beside it, reloaded and compared with ``model`` (through
        ``preprocessed``, ``serving_default`` with the model given the same transform, and ``serving_bytes``); only
        then is it swapped in (:func:`keras_convnets.publish.publishing`), so a failed or killed export never
        replaces a good one, and the next one recovers what a killed one left.
    """
    from keras_convnets.models.backend import BACKEND

    checks.one_of("interpolation", interpolation, transforms.INTERPOLATIONS)
    path = os.path.abspath(os.fspath(path))
    write = _write_checked if BACKEND == "tensorflow" else _write_through_tensorflow
    with precision.onednn_bf16(False), publish.publishing({path: publish.SAVED_MODEL}) as staged:
        # the rewrite off: in a bf16 run's process, the check runs the file as a server would
        write(model, staged[path], list(class_names), check_images, atol, crop_fraction, interpolation)
    return path


#: The files :func:`_write_through_tensorflow` hands its TensorFlow process, in one temporary directory.
_HANDOVER = {"architecture": "model.json", "weights": "model.weights.h5", "images": "check_images.npy",
             "request": "export.json", "answers": "answers.npz"}


def _default_check_images(model):
    """8 random uint8 images of the model's input shape (seeded): what an export is checked on by default."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (8,) + tuple(model.input_shape[1:]), dtype=np.uint8)


def _write_through_tensorflow(model, export_dir, class_names, check_images, atol, crop_fraction, interpolation):
    """:func:`_write_checked` for a model on another Keras backend: its architecture (``to_json``, our layers
    registered) and weights go to a temporary directory, a ``KERAS_BACKEND=tensorflow`` process (:func:`_main`)
    rebuilds it, writes ``export_dir`` and checks it against the rebuilt model; then what the reloaded SavedModel
    answered there on the check images (``preprocessed`` and ``serving_default``) is checked here against ``model``
    itself, within ``atol``. A model computing in a mixed precision (bf16 roundoff on each backend, unmeasured) is
    checked only in the TensorFlow process."""
    check_images = np.asarray(_default_check_images(model) if check_images is None else check_images, np.uint8)
    with tempfile.TemporaryDirectory(prefix="keras_convnets-export-") as handover:
        files = {key: os.path.join(handover, name) for key, name in _HANDOVER.items()}
        architecture = json.loads(model.to_json())
        architecture.pop("compile_config", None)  # the optimizer (and its schedule) is not served
        with open(files["architecture"], "w") as f:
            json.dump(architecture, f)
        model.save_weights(files["weights"])
        np.save(files["images"], check_images)
        with open(files["request"], "w") as f:
            json.dump({"export_dir": export_dir, "class_names": class_names, "atol": atol,
                       "crop_fraction": crop_fraction, "interpolation": interpolation}, f)
        _run_tensorflow_process(handover)
        with np.load(files["answers"]) as saved:
            answers = {signature: saved[signature] for signature in saved.files}
    if getattr(model, "compute_dtype", "float32") != "float32":
        return
    difference = _difference(model, check_images, answers, crop_fraction, interpolation)
    if not difference <= atol:
        raise ExportError(f"the SavedModel written by TensorFlow does not reproduce the model trained on the other "
                          f"backend (max difference {difference:.3g}); the previous export, if any, was left "
                          "unchanged")


def _run_tensorflow_process(handover: str) -> None:
    """Runs :func:`_main` on ``handover`` in a ``KERAS_BACKEND=tensorflow`` Python process (Keras 3: tf-keras
    unset), this package importable as here; an :class:`ExportError` with its last line if it fails."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, KERAS_BACKEND="tensorflow",
               PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
    env.pop("TF_USE_LEGACY_KERAS", None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    code = "import sys; from keras_convnets.serving.saved_model import _main; sys.exit(_main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, handover], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()] or ["(no output)"]
        raise ExportError(f"the TensorFlow process exporting the SavedModel failed: {lines[-1].strip()[:300]}")


def _main(argv) -> int:
    """The TensorFlow side of :func:`_write_through_tensorflow`: ``argv`` is the handover directory. Rebuilds the
    model from its architecture and weights and writes the checked SavedModel the request names."""
    from keras_convnets.models import registry  # noqa: F401 (registers our layers, so the architecture resolves)
    from keras_convnets.models.backend import BACKEND, keras

    if BACKEND != "tensorflow":
        raise SystemExit(f"the SavedModel is written with Keras on tensorflow, not {BACKEND}")
    files = {key: os.path.join(argv[0], name) for key, name in _HANDOVER.items()}
    with open(files["architecture"]) as f:
        model = keras.models.model_from_json(f.read())
    model.load_weights(files["weights"])
    with open(files["request"]) as f:
        request = json.load(f)
    answers = _write_checked(model, request["export_dir"], request["class_names"], np.load(files["images"]),
                             request["atol"], request["crop_fraction"], request["interpolation"])
    np.savez(files["answers"], **answers)
    return 0


def _write_checked(model, export_dir, class_names, check_images, atol, crop_fraction, interpolation):
    """Saves ``model``'s serving module at ``export_dir`` and checks the reloaded one against it (an
    :class:`ExportError` if it does not reproduce it). Returns what the reloaded SavedModel answered on
    ``check_images``: ``{"preprocessed": probabilities, "serving_default": probabilities}``."""
    import tensorflow as tf

    labels_path = publish.write_labels(os.path.join(os.path.dirname(export_dir), LABELS_FILE), class_names)
    module = _serving_module(model, class_names, labels_path, crop_fraction, interpolation)
    with tensorflow_logger_at("WARNING"):  # "Assets written to: <temporary directory>" is not news to a user
        tf.saved_model.save(module, export_dir, signatures=signatures(module))
    check_images = np.asarray(_default_check_images(model) if check_images is None else check_images, np.uint8)
    reloaded = tf.saved_model.load(export_dir)
    answers = {signature: predict(reloaded, check_images, signature=signature)
               for signature in (PREPROCESSED, "serving_default")}
    difference = _difference(model, check_images, answers, crop_fraction, interpolation)
    # PNG is lossless: the decoded files are check_images again, so serving_bytes must give serving_default's.
    encoded = tf.constant([tf.io.encode_png(image).numpy() for image in check_images])
    from_bytes = reloaded.signatures[SERVING_BYTES](**{BYTES_INPUT: encoded})[SIGNATURE_OUTPUT].numpy()
    difference = max(difference, float(np.max(np.abs(from_bytes - answers["serving_default"]))))
    if not difference <= atol or load_class_names(reloaded) != list(class_names):
        raise ExportError(f"the reloaded SavedModel does not reproduce the model (max difference {difference:.3g}); "
                          "the previous export, if any, was left unchanged")
    return answers


def _difference(model, check_images, answers, crop_fraction, interpolation) -> float:
    """The largest difference between a SavedModel's ``answers`` on ``check_images`` (:func:`_write_checked`'s)
    and ``model``'s probabilities on the same views: the images as they are (``preprocessed``) and resized and
    cropped as ``serving_default`` does."""
    size = int(model.input_shape[1])
    views = {PREPROCESSED: check_images,
             "serving_default": transforms.serving_transform(check_images, size, crop_fraction, interpolation)}
    return max(float(np.max(np.abs(answers[signature] - np.asarray(model(views[signature], training=False),
                                                                     np.float32))))
               for signature in views)
