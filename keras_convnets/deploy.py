"""Exports of a trained model for other runtimes: ONNX, LiteRT (float32 or int8) and OpenVINO, beside the SavedModel.

Every export keeps the SavedModel's contract as far as its format allows: raw ``uint8`` RGB pixels in (the model's
normalization is its first layer, so it is inside the file), ``probabilities`` out, the class names beside the file
(``NAME.labels.txt``, one per line; ONNX and OpenVINO also carry them in the model's metadata).

- ``saved_model``: our SavedModel (:mod:`keras_convnets.training.export`) with every signature, including
  ``serving_bytes`` (encoded images in); an export older than that signature, or one whose ImageNet classes are
  placeholder indices, is re-saved with it and with the class names (:mod:`keras_convnets.models.imagenet`).
- ``onnx`` (extra ``[onnx]``), ``litert`` (extra ``[litert]``), ``openvino`` (extra ``[openvino]``): the
  SavedModel's ``preprocessed`` function frozen at the model's fixed input size, ``images`` uint8
  ``[batch, S, S, 3]`` → ``probabilities`` float32 ``[batch, classes]``. These files do not resize: a client
  resizes and crops first, as ``serving_default`` does (short side to ``round(S / crop_fraction)``, centre
  ``S x S`` crop). ``tf2onnx.convert.from_keras`` fails on Keras 3 (onnx/tensorflow-onnx#2329), so the ONNX file is
  converted from the frozen graph (``tf2onnx.convert.from_graph_def``); freezing also turns the constants a restored
  SavedModel captures (the normalization's mean and variance) into graph constants, which the LiteRT converter
  otherwise reads as uninitialized inputs (NaN out).
- ``quantize="int8"`` (LiteRT only): full-integer post-training quantization (every convolution, addition,
  pooling, dense layer and the softmax in int8; only the uint8 → float input cast and the final dequantize are not),
  calibrated on images of the run's own training set in the evaluation view (``run.json`` beside the SavedModel
  names it; ``calibration_dataset`` otherwise). Its probabilities are multiples of 1/256 (an int8 softmax).

Each file is written beside ``out``, reloaded in its own runtime and compared with the SavedModel on check images
before it replaces ``out``: float32 exports must agree within :data:`PARITY_ATOL`, else :class:`ExportError` and
``out`` is left as it was; an int8 export reports its top-1 agreement instead. The runtimes are optional extras,
imported only when used; a missing one is a :class:`MissingExtraError` naming the extra.
"""

import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import tempfile
from typing import Callable, List, Optional

import numpy as np

from keras_convnets import checks
from keras_convnets.models import imagenet
from keras_convnets.training import datasets
from keras_convnets.training import export as tf_export

FORMATS = ("saved_model", "onnx", "litert", "openvino")
QUANTIZATIONS = ("int8",)
#: File name endings of the formats (``saved_model`` is a directory).
SUFFIXES = {"onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}
#: The extra that installs each format's converter and runtime, and the modules it needs.
EXTRAS = {"onnx": ("onnx", ("tf2onnx", "onnx", "onnxruntime")), "litert": ("litert", ("ai_edge_litert",)),
          "openvino": ("openvino", ("openvino",))}
#: How far a float32 export's probabilities may be from the SavedModel's (the issue's bound; float32 reordering
#: in another runtime's kernels moves them by ~1e-6, see tests/test_deploy.py).
PARITY_ATOL = 1e-4
#: ONNX operator set written (onnxruntime >= 1.14 runs it).
ONNX_OPSET = 17
#: Calibration images of an int8 export, by default, and how many further training images check it.
CALIBRATION_IMAGES = 256
INT8_CHECK_IMAGES = 64


class MissingExtraError(ImportError):
    """A format whose optional dependencies are not installed (one line, naming the extra)."""


class ExportError(RuntimeError):
    """The written file does not reproduce the SavedModel."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote. ``input_shape``: ``(S, S, 3)`` uint8 the file takes (``None``: any size, the
    SavedModel); ``max_difference``: largest probability difference from the SavedModel on the check images (float
    exports); ``agreement``: share of check images with the SavedModel's top-1 class (every export)."""

    format: str
    path: str
    files: tuple
    labels_path: str
    class_names: tuple
    input_shape: Optional[tuple]
    crop_fraction: float
    interpolation: str
    quantize: Optional[str]
    size_bytes: int
    max_difference: float
    agreement: float
    check_images: int
    calibration: str = ""

    def describe(self) -> List[str]:
        """What was written, in lines (what ``keras-convnets export`` prints)."""
        what = self.format + (f" {self.quantize}" if self.quantize else "")
        lines = [f"wrote {self.path} ({what}, {self.size_bytes / 1e6:.2f} MB)"]
        classes = len(self.class_names)
        if self.input_shape is None:
            lines.append(f"input: uint8 images of any size (signature serving_default), or encoded JPEG/PNG bytes "
                         f"(serving_bytes); output: probabilities [batch, {classes}]")
        else:
            size = self.input_shape[0]
            short = round(size / self.crop_fraction)
            lines.append(f"input: images uint8 [batch, {size}, {size}, 3] RGB: the model's size, fixed in this "
                         f"format (resize the short side to {short} ({self.interpolation}) and take the centre "
                         f"{size}x{size} crop first, as serving_default does); output: probabilities "
                         f"[batch, {classes}]")
        lines.append(f"class names: {self.labels_path}")
        if self.calibration:
            lines.append(f"calibrated on {self.calibration}")
        parity = f"max probability difference {self.max_difference:.2g}, " if not self.quantize else ""
        lines.append(f"checked against the SavedModel on {self.check_images} images: {parity}top-1 agreement "
                     f"{self.agreement:.1%}")
        return lines


def require(format: str):
    """Imports the modules ``format`` needs; a :class:`MissingExtraError` naming the extra if one is missing."""

    checks.one_of("format", format, FORMATS)
    if format not in EXTRAS:
        return
    extra, modules = EXTRAS[format]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise MissingExtraError(f"--format {format} needs {module.replace('_', '-')}, which is not installed "
                                    f"({' '.join(str(error).split())[:80]}): pip install "
                                    f"\"keras-convnets[{extra}]\"") from None


def saved_model_dir(path: str) -> str:
    """``path`` itself if it is a SavedModel, else ``path/saved_model`` (a run directory); a ValueError if neither."""
    for candidate in (path, os.path.join(path, "saved_model")):
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
            return candidate
    raise ValueError(f"no SavedModel in {path} (expected {path}/saved_model.pb or {path}/saved_model/saved_model.pb)")


def labels_path(out: str) -> str:
    """Where the class names of the file ``out`` go: ``NAME.labels.txt`` beside ``NAME.onnx`` (a SavedModel keeps
    them in ``assets/labels.txt``)."""
    root, suffix = os.path.splitext(out)
    return os.path.join(out, "assets", "labels.txt") if not suffix else f"{root}.labels.txt"


def _check_arguments(format, out, quantize, calibration_images):
    checks.one_of("format", format, FORMATS)
    if quantize is not None:
        checks.one_of("quantize", quantize, QUANTIZATIONS)
        if format != "litert":  # int8 post-training quantization is LiteRT's
            checks.fail("format", f"'litert' with quantize={quantize!r}", format)
    checks.positive_int("calibration_images", calibration_images)
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        checks.fail("out", "a path", out)
    suffix = SUFFIXES.get(format)
    if suffix and not str(out).endswith(suffix):
        checks.fail("out", f"a file name ending in {suffix} for format {format!r}", str(out))
    if not suffix and os.path.splitext(str(out))[1] in SUFFIXES.values():
        checks.fail("out", "a directory name for format 'saved_model'", str(out))


# ----------------------------------------------------------------------------------------------- the function --

def _view(saved_model):

    size = tf_export.input_size(saved_model)
    return size, tf_export.crop_fraction(saved_model), tf_export.interpolation(saved_model)


def _classifier_function(saved_model):
    """A ``tf.function`` ``images`` uint8 ``[None, S, S, 3]`` → ``{"probabilities": ...}``: the SavedModel's
    ``preprocessed`` signature (``serving_default`` of an export older than it, which takes that shape)."""
    import tensorflow as tf

    (height, width), _, _ = _view(saved_model)
    name = tf_export.PREPROCESSED if tf_export.resizes_images(saved_model) else "serving_default"
    signature = saved_model.signatures[name]

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.uint8, name=tf_export.SIGNATURE_INPUT)])
    def classify(images):
        return {tf_export.SIGNATURE_OUTPUT: signature(**{tf_export.SIGNATURE_INPUT: images})[
            tf_export.SIGNATURE_OUTPUT]}

    return classify


def frozen_classifier(saved_model):
    """:func:`_classifier_function` with every variable and captured constant folded into the graph (a
    ``ConcreteFunction`` with one input and no captures): what the converters read."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(_classifier_function(saved_model).get_concrete_function())


# ------------------------------------------------------------------------------------------------ the writers --

def _write_onnx(saved_model, path, names, view):
    import onnx
    import tf2onnx

    frozen = frozen_classifier(saved_model)
    graph_def = frozen.graph.as_graph_def()
    with _quiet_tensorflow():
        proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=[frozen.inputs[0].name],
                                                  output_names=[frozen.outputs[0].name], opset=ONNX_OPSET)
    renames = {frozen.inputs[0].name: tf_export.SIGNATURE_INPUT, frozen.outputs[0].name: tf_export.SIGNATURE_OUTPUT}
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.name = renames.get(value.name, value.name)
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    (height, _), fraction, method = view
    for key, value in (("class_names", json.dumps(list(names))), ("image_size", str(height)),
                       ("crop_fraction", repr(fraction)), ("interpolation", method),
                       ("input", f"images uint8 [batch, {height}, {height}, 3] RGB"),
                       ("output", f"probabilities float32 [batch, {len(names)}]")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "keras-convnets"
    onnx.checker.check_model(proto)
    onnx.save(proto, path)
    return [path]


def _write_litert(saved_model, path, quantize, calibration):
    import tensorflow as tf

    frozen = frozen_classifier(saved_model)
    holder = tf.Module()
    spec = tf.TensorSpec(frozen.inputs[0].shape, tf.uint8, name="images")

    @tf.function(input_signature=[spec])
    def classify(images):
        return {"probabilities": frozen(images)[0]}

    holder.classify = classify
    converter = tf.lite.TFLiteConverter.from_concrete_functions([classify.get_concrete_function()], holder)
    if quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        # Integer kernels only: a layer without one fails the conversion instead of silently staying float.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with _quiet_tensorflow():
        flatbuffer = converter.convert()
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return [path]


def _write_openvino(saved_model, path, names, view):
    import openvino as ov

    model = ov.convert_model(_classifier_function(saved_model))
    (height, _), fraction, method = view
    model.set_rt_info(json.dumps(list(names)), ["keras_convnets", "class_names"])
    model.set_rt_info(str(height), ["keras_convnets", "image_size"])
    model.set_rt_info(repr(fraction), ["keras_convnets", "crop_fraction"])
    model.set_rt_info(method, ["keras_convnets", "interpolation"])
    ov.save_model(model, path, compress_to_fp16=False)  # the default halves the weights to float16
    return [path, os.path.splitext(path)[0] + ".bin"]


@contextlib.contextmanager
def _quiet_tensorflow():
    """TensorFlow's Python logger at ERROR for the duration: the converters' deprecation notices about TF1 APIs
    they call are not the user's business."""
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


# ------------------------------------------------------------------------------------------------ the runtimes --

def runner(path: str) -> Callable:
    """A function ``uint8 [batch, S, S, 3] → float32 [batch, classes]`` running the exported file ``path`` in its
    own runtime: onnxruntime (``.onnx``), ai-edge-litert's interpreter (``.tflite``), OpenVINO (``.xml``), or a
    SavedModel directory's ``preprocessed`` signature."""
    path = str(path)
    if path.endswith(".onnx"):
        require("onnx")
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda images: session.run(None, {name: np.asarray(images, np.uint8)})[0]
    if path.endswith(".tflite"):
        require("litert")
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=path)
        run = interpreter.get_signature_runner()
        return lambda images: run(images=np.asarray(images, np.uint8))["probabilities"]
    if path.endswith(".xml"):
        require("openvino")
        import openvino as ov

        # OpenVINO's CPU plugin computes in bfloat16 by default on CPUs with AVX512-BF16 or AMX (3 significant
        # digits: 1e-2 off on trained models); the export's contract is float32.
        compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return lambda images: compiled(np.asarray(images, np.uint8))[0]

    saved_model = tf_export.load(saved_model_dir(path))
    signature = tf_export.PREPROCESSED if tf_export.resizes_images(saved_model) else "serving_default"
    return lambda images: tf_export.predict(saved_model, np.asarray(images, np.uint8), signature=signature)


def _in_batches(run, images, batch_size=64):
    return np.concatenate([np.asarray(run(images[i:i + batch_size]), np.float32)
                           for i in range(0, len(images), batch_size)])


# --------------------------------------------------------------------------------------------- calibration --

def _run_record(saved_model_path):

    found = tf_export.recorded_run(saved_model_path)
    if found is not None and found[1] is None:
        raise ValueError(f"{found[0]} is not a run record (JSON): pass calibration_dataset (--calibration-dataset)")
    return None if found is None else found[1]


def training_images(saved_model_path, saved_model, count, dataset=None, data_dir=None):
    """``(uint8 [count, S, S, 3], what they are)``: the first ``count`` images of the training split of the run that
    wrote the SavedModel (its ``run.json``: dataset, held-out split), or of ``dataset``'s, in the SavedModel's
    evaluation view (size, crop fraction, interpolation)."""

    record = _run_record(saved_model_path) or {}
    recorded = record.get("data") if isinstance(record.get("data"), dict) else {}
    if dataset is None:
        dataset = recorded.get("dataset") or (record.get("arguments") or {}).get("dataset")
    if dataset is None:
        raise ValueError(f"int8 quantization calibrates on the run's training images, but {saved_model_path} has no "
                         "run.json beside it: pass calibration_dataset (--calibration-dataset NAME|FOLDER)")
    (size, _), fraction, method = _view(saved_model)
    unused = datasets.Statistics((0.0,) * 3, (1.0,) * 3, "not used: the model normalizes")
    kwargs = {key: recorded[key] for key in ("holdout_fraction", "split_seed") if key in recorded and
              recorded.get("dataset") == dataset}
    description = datasets.describe(dataset, image_size=size, augmentation="imagenet" if fraction < 1 else "none",
                                    statistics=unused, data_dir=data_dir, **kwargs)
    train_view = dataclasses.replace(description, evaluation=description.train)
    images = []
    for batch, _ in datasets.eval_dataset(train_view, 128, crop_fraction=fraction if fraction < 1 else None,
                                          interpolation=method).as_numpy_iterator():
        images.append(batch)
        if sum(len(b) for b in images) >= count:
            break
    images = np.concatenate(images)[:count]
    source = description.train.source + (f" ({description.train.holdout} part)" if description.train.holdout else "")
    return images, f"{len(images)} images of {dataset}'s {source} split"


# ---------------------------------------------------------------------------------------------------- export --

def export(source: str, format: str, out: str, *, quantize: Optional[str] = None,
           calibration_dataset: Optional[str] = None, calibration_images: int = CALIBRATION_IMAGES,
           data_dir: Optional[str] = None, check_images: Optional[np.ndarray] = None) -> ExportResult:
    """Writes the model of ``source`` (a ``train --out`` directory or one of our SavedModels) as ``format`` at
    ``out`` (``NAME.onnx``, ``NAME.tflite``, ``NAME.xml`` + ``NAME.bin``, or a SavedModel directory), its class
    names beside it, checks the file in its runtime against the SavedModel and returns what was written.

    ``quantize="int8"`` (format ``"litert"``): full-integer quantization calibrated on ``calibration_images``
    training images of the run (``calibration_dataset``: another tfds name or folder, or the one for a SavedModel
    without ``run.json``); it is then checked on the next 64 training images. ``check_images``: uint8
    ``[n, S, S, 3]`` images in the evaluation view to compare on (default: 8 random images, or those 64).
    """
    _check_arguments(format, out, quantize, calibration_images)
    require(format)

    source_dir = saved_model_dir(str(source))
    saved_model = tf_export.load(source_dir)
    names = imagenet.readable(tf_export.load_class_names(saved_model))
    view = _view(saved_model)
    (height, width), fraction, method = view
    out = os.path.abspath(str(out))
    if format == "saved_model":
        return _export_saved_model(source_dir, saved_model, out, names, view,
                                   _check_images(check_images, height, width))
    calibration, held, calibration_note = None, None, ""
    if quantize:
        calibration, held, calibration_note = _calibration(source_dir, saved_model, calibration_images,
                                                           calibration_dataset, data_dir)
    check_images = _check_images(held if check_images is None else check_images, height, width)

    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    try:
        written_path = os.path.join(tmp, os.path.basename(out))
        written = _write_format(format, saved_model, written_path, names, view, quantize, calibration)
        difference, agreement = _compare(source_dir, written_path, check_images)
        if not quantize and not difference <= PARITY_ATOL:
            raise ExportError(f"the {format} file does not reproduce the SavedModel (max probability difference "
                              f"{difference:.3g} > {PARITY_ATOL:g}); {out} was left unchanged")
        labels = labels_path(out)
        files = _move_into_place(written, labels, names, tmp, parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(format, out, tuple(files), labels, tuple(names), (height, width, 3), fraction, method,
                        quantize, sum(os.path.getsize(f) for f in files[:-1]), difference, agreement,
                        len(check_images), calibration_note)


def _calibration(source_dir, saved_model, count, dataset, data_dir):
    """``(calibration images, check images, what they are)`` of an int8 export: ``count`` training images of the
    run (:func:`training_images`) to calibrate on, and the next :data:`INT8_CHECK_IMAGES` to check it with."""
    pulled, note = training_images(source_dir, saved_model, count + INT8_CHECK_IMAGES, dataset, data_dir)
    if len(pulled) <= INT8_CHECK_IMAGES:
        raise ValueError(f"calibration needs more than {INT8_CHECK_IMAGES} training images; got {len(pulled)}")
    calibration, held = pulled[:-INT8_CHECK_IMAGES], pulled[-INT8_CHECK_IMAGES:]
    return calibration, held, note.replace(f"{len(pulled)} images", f"{len(calibration)} images", 1)


def _check_images(images, height, width):
    """``images`` as uint8 (8 random images when None), refused unless they are ``[n, height, width, 3]`` with at
    least one image (a check on none would pass anything)."""
    if images is None:
        images = np.random.default_rng(0).integers(0, 256, (8, height, width, 3), dtype=np.uint8)
    images = np.asarray(images, np.uint8)
    if images.shape[1:] != (height, width, 3) or len(images) == 0:
        checks.fail("check_images", f"uint8 images of shape [n >= 1, {height}, {width}, 3]", images.shape)
    return images


def _write_format(format, saved_model, path, names, view, quantize, calibration):
    """Writes ``saved_model`` as ``format`` at ``path``; the files written."""
    if format == "onnx":
        return _write_onnx(saved_model, path, names, view)
    if format == "litert":
        return _write_litert(saved_model, path, quantize, calibration)
    return _write_openvino(saved_model, path, names, view)


def _compare(source_dir, path, check_images):
    """``(max probability difference, top-1 agreement)`` of the file at ``path`` with the SavedModel in
    ``source_dir`` on ``check_images``, each run in its own runtime."""
    expected = _in_batches(runner(source_dir), check_images)
    got = _in_batches(runner(path), check_images)
    difference = float(np.max(np.abs(got - expected)))
    agreement = float(np.mean(got.argmax(-1) == expected.argmax(-1)))
    return difference, agreement


def _move_into_place(written, labels, names, tmp, parent):
    """Writes the class names ``names`` into ``tmp`` under the name of ``labels``, then moves the files ``written``
    and that one into ``parent``, each replacing its namesake; their paths there, the labels last."""
    staged_labels = os.path.join(tmp, os.path.basename(labels))
    with open(staged_labels, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in names))
    files = []
    for path in written + [staged_labels]:
        target = os.path.join(parent, os.path.basename(path))
        os.replace(path, target)
        files.append(target)
    return files


def _directory_size(path):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _export_saved_model(source_dir, saved_model, out, names, view, check_images):
    """A copy of the SavedModel at ``out``, re-saved (:func:`_resave`) when it lacks ``serving_bytes`` or its class
    names are ImageNet placeholders, then checked signature by signature against the source on ``check_images``
    (:func:`_check_images`)."""
    import tensorflow as tf

    _, fraction, method = view
    if os.path.abspath(source_dir) == out:
        checks.fail("out", "another directory than the SavedModel exported", out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
    try:
        written = os.path.join(tmp, "saved_model")
        current = tf_export.SERVING_BYTES in saved_model.signatures and \
            tf_export.load_class_names(saved_model) == list(names)
        if current:
            shutil.copytree(source_dir, written)
        else:
            _resave(saved_model, written, names, view, tmp)
        reloaded = tf_export.load(written)
        expected = tf_export.predict(saved_model, check_images)
        got = tf_export.predict(reloaded, check_images)
        encoded = tf.constant([tf.io.encode_png(image).numpy() for image in check_images])
        from_bytes = reloaded.signatures[tf_export.SERVING_BYTES](**{tf_export.BYTES_INPUT: encoded})[
            tf_export.SIGNATURE_OUTPUT].numpy()
        difference = float(max(np.max(np.abs(got - expected)), np.max(np.abs(from_bytes - expected))))
        if not difference <= PARITY_ATOL or tf_export.load_class_names(reloaded) != list(names):
            raise ExportError(f"the re-saved SavedModel does not reproduce {source_dir} (max probability difference "
                              f"{difference:.3g}); {out} was left unchanged")
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(written, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult("saved_model", out, (out,), labels_path(out), tuple(names), None, fraction, method, None,
                        _directory_size(out), difference, float(np.mean(got.argmax(-1) == expected.argmax(-1))),
                        len(check_images))


def _resave(saved_model, path, names, view, tmp):
    """Saves a ``tf.Module`` that calls ``saved_model``'s signatures, adds ``serving_bytes`` and the class names
    ``names``: an older export brought up to the current signatures without its Keras model."""
    import tensorflow as tf

    (size, _), fraction, method = view
    serving = saved_model.signatures["serving_default"]
    classify = _classifier_function(saved_model)
    serving_spec = serving.structured_input_signature[1][tf_export.SIGNATURE_INPUT]
    labels = os.path.join(tmp, tf_export.LABELS_FILE)
    with open(labels, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in names))
    module = tf.Module()
    module.source = saved_model
    tf_export.record_view(module, labels, size, fraction, method)
    output = tf_export.SIGNATURE_OUTPUT

    @tf.function(input_signature=[tf.TensorSpec(serving_spec.shape, tf.uint8, name=tf_export.SIGNATURE_INPUT)])
    def serve(images):
        return {output: serving(**{tf_export.SIGNATURE_INPUT: images})[output]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=tf_export.BYTES_INPUT)])
    def serve_bytes(image_bytes):
        images = tf_export.decode_batch(image_bytes, size, fraction, method)
        return {output: tf.cond(tf.shape(images)[0] > 0, lambda: classify(images)[output],
                                lambda: tf.zeros([0, len(names)], tf.float32))}

    @tf.function(input_signature=[])
    def class_names():
        return {"class_names": tf.constant(list(names))}

    module.serve, module.preprocessed, module.serve_bytes, module.class_names = serve, classify, serve_bytes, \
        class_names
    with _quiet_tensorflow():
        tf.saved_model.save(module, path, signatures=tf_export.signatures(module))
    # The source's own labels.txt is saved too (it belongs to the restored module) and keeps the plain name, so the
    # file TF Serving users read is written again with the names served.
    with open(os.path.join(path, "assets", tf_export.LABELS_FILE), "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in names))


def formats_available() -> dict:
    """``{format: None or the one-line reason it cannot be used here}``."""
    available = {}
    for format in FORMATS:
        try:
            require(format)
            available[format] = None
        except MissingExtraError as error:
            available[format] = str(error)
    return available


__all__ = ["export", "runner", "ExportResult", "ExportError", "MissingExtraError", "FORMATS"]
