"""Exports of a trained model for other runtimes: ONNX, LiteRT (float32 or int8) and OpenVINO, beside the SavedModel.

Every export keeps the SavedModel's contract as far as its format allows: raw ``uint8`` RGB pixels in (the model's
normalization is its first layer, so it is inside the file), ``probabilities`` out, the class names beside the file
(``NAME.labels.txt``, one per line; ONNX and OpenVINO also carry them in the model's metadata).

The formats are one table, :data:`FORMATS` (one :class:`Format` each: its name, file suffix, optional extra, how
it is written and how it runs); the command line's choices and help come from it, and :func:`register_format` adds
one.

- ``saved_model``: our SavedModel (:mod:`keras_convnets.serving.saved_model`) with every signature, including
  ``serving_bytes`` (encoded images in); an export older than that signature, or one whose ImageNet classes are
  placeholder indices, is re-saved with it and with the class names (:mod:`keras_convnets.models.imagenet`).
- ``onnx`` (extra ``[onnx]``), ``litert`` (extra ``[litert]``), ``openvino`` (extra ``[openvino]``): the
  SavedModel's ``preprocessed`` function frozen at the model's fixed input size, ``images`` uint8
  ``[batch, S, S, 3]`` → ``probabilities`` float32 ``[batch, classes]``. These files do not resize: a client
  resizes and crops first, as ``serving_default`` does (short side to ``round(S / crop_fraction)``, centre
  ``S x S`` crop). ``tf2onnx.convert.from_keras`` fails on Keras 3 (onnx/tensorflow-onnx#2329), so the ONNX file is
  converted from the frozen graph (``tf2onnx.convert.from_graph_def``); freezing also turns the constants a restored
  SavedModel captures (the normalization's mean and variance) into graph constants, which the LiteRT converter
  otherwise reads as uninitialized inputs (NaN out). LiteRT converts float32 graphs only: the SavedModel of a
  ``mixed_float16`` / ``mixed_bfloat16`` run is refused in one line before converting (ONNX and OpenVINO take it).
- ``quantize="int8"`` (LiteRT only): full-integer post-training quantization (every convolution, addition,
  pooling, dense layer and the softmax in int8; only the uint8 → float input cast and the final dequantize are not),
  calibrated on images of the run's own training set in the evaluation view (``run.json`` beside the SavedModel
  names it; ``calibration_dataset`` otherwise). Its probabilities are multiples of 1/256 (an int8 softmax).

A model and its sidecars (``NAME.bin``, ``NAME.labels.txt``) are one unit, published together through
:func:`keras_convnets.publish.publishing`: written beside ``out``, reloaded in its own runtime and compared with the
SavedModel on check images, and only then swapped in (float32 exports must agree within :data:`PARITY_ATOL`, else
:class:`ExportError` and ``out`` is left as it was; an int8 export reports its top-1 agreement instead). An ``out``
that exists and is not an output of the same format written by this package is refused before anything is done, and
so is a name whose labels file another format's model beside it already owns. The runtimes are optional extras,
imported only when used; a missing one is a :class:`MissingExtraError` naming the extra.
"""

import contextlib
import dataclasses
import importlib
import json
import os
import shutil
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from keras_convnets import checks, publish, run_directory
from keras_convnets.data import catalog, pipelines
from keras_convnets.models import imagenet
from keras_convnets.serving import saved_model as savedmodel

QUANTIZATIONS = ("int8",)
#: How far a float32 export's probabilities may be from the SavedModel's (the issue's bound; float32 reordering
#: in another runtime's kernels moves them by ~1e-6, see tests/test_deploy.py).
PARITY_ATOL = 1e-4
#: ONNX operator set written (onnxruntime >= 1.14 runs it).
ONNX_OPSET = 17
#: Calibration images of an int8 export, by default, and how many further training images check it (at most).
CALIBRATION_IMAGES = 256
INT8_CHECK_IMAGES = 64

#: The one error of a written model that does not reproduce the SavedModel (the training export's, too).
ExportError = savedmodel.ExportError


class MissingExtraError(ImportError):
    """A format whose optional dependencies are not installed (one line, naming the extra)."""


@dataclasses.dataclass(frozen=True)
class Source:
    """The SavedModel an export starts from: its folder, the loaded module, its class names (readable ImageNet
    names for an older export's indices) and its evaluation view ``((height, width), crop fraction, interpolation)``."""

    directory: str
    saved_model: object
    names: Tuple[str, ...]
    view: tuple

    @property
    def size(self) -> Tuple[int, int]:
        return self.view[0]


@dataclasses.dataclass(frozen=True)
class Format:
    """One export format. ``suffix``: the file name's ending (``""``: a SavedModel folder); ``companions``: the
    endings of the other files written beside it (OpenVINO's ``.bin``); ``extra``: the ``pip install
    "keras-convnets[EXTRA]"`` that brings ``modules``; ``kind``: how an existing output of this format is recognised
    (:class:`keras_convnets.publish.Kind`); ``write(source, path, quantize, calibration)``: writes the model at
    ``path``; ``runner(path)``: a function ``uint8 [batch, S, S, 3] -> float32 [batch, classes]`` running a written
    file in its own runtime; ``quantizations``: what ``quantize`` it takes; ``help``: one phrase for the command
    line."""

    name: str
    help: str
    write: Callable
    runner: Callable
    kind: publish.Kind
    suffix: str = ""
    companions: Tuple[str, ...] = ()
    extra: Optional[str] = None
    modules: Tuple[str, ...] = ()
    quantizations: Tuple[str, ...] = ()

    def labels_path(self, out: str) -> str:
        """Where the class names of the model at ``out`` go: ``NAME.labels.txt`` beside ``NAME.onnx``, a
        SavedModel's ``assets/labels.txt`` inside it."""
        if not self.suffix:
            return os.path.join(out, "assets", savedmodel.LABELS_FILE)
        return f"{out[:-len(self.suffix)]}.labels.txt"

    def files(self, out: str) -> List[str]:
        """Every path of the unit written at ``out``: the model, its companions, the labels file (a folder: itself)."""
        if not self.suffix:
            return [out]
        root = out[:-len(self.suffix)]
        return [out, *(root + companion for companion in self.companions), self.labels_path(out)]


#: The export formats by name, in the command line's order (:func:`register_format` adds one).
FORMATS: Dict[str, Format] = {}


def register_format(format: Format) -> Format:
    """Adds ``format`` to :data:`FORMATS` (the command line's ``--format`` choices and help are read from it)."""
    FORMATS[format.name] = format
    return format


def format_help() -> str:
    """The ``--format`` help: each format's name and phrase."""
    return "; ".join(f"{name}: {format.help}" for name, format in FORMATS.items())


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


def require(format: str) -> Format:
    """The :class:`Format` named ``format``, its modules imported; a :class:`MissingExtraError` naming the extra if
    one is missing."""
    checks.one_of("format", format, FORMATS)
    spec = FORMATS[format]
    for module in spec.modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise MissingExtraError(f"--format {format} needs {module.replace('_', '-')}, which is not installed "
                                    f"({' '.join(str(error).split())[:80]}): pip install "
                                    f"\"keras-convnets[{spec.extra}]\"") from None
    return spec


def format_of(path: str) -> Format:
    """The format whose suffix ``path`` ends with (a folder: ``saved_model``)."""
    return next((spec for spec in FORMATS.values() if spec.suffix and str(path).endswith(spec.suffix)),
                FORMATS["saved_model"])


def labels_path(out: str) -> str:
    """Where the class names of the exported model ``out`` are: ``NAME.labels.txt`` beside ``NAME.onnx``, a
    SavedModel's ``assets/labels.txt``."""
    return format_of(out).labels_path(str(out))


def _check_arguments(format, out, quantize, calibration_images) -> Format:
    checks.one_of("format", format, FORMATS)
    spec = FORMATS[format]
    if quantize is not None:
        checks.one_of("quantize", quantize, QUANTIZATIONS)
        if quantize not in spec.quantizations:
            takes = [name for name, other in FORMATS.items() if quantize in other.quantizations]
            checks.fail("format", " or ".join(repr(name) for name in takes) + f" with quantize={quantize!r}", format)
    checks.positive_int("calibration_images", calibration_images)
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        checks.fail("out", "a path", out)
    suffixes = [other.suffix for other in FORMATS.values() if other.suffix]
    if spec.suffix and not str(out).endswith(spec.suffix):
        checks.fail("out", f"a file name ending in {spec.suffix} for format {format!r}", str(out))
    if not spec.suffix and os.path.splitext(str(out))[1] in suffixes:
        checks.fail("out", f"a directory name for format {format!r}", str(out))
    return spec


def _unit(spec: Format, out: str) -> Dict[str, publish.Kind]:
    """The paths written at ``out`` with what each may replace: the model an output of its format; a companion or
    the labels file only as part of that model's unit (the model beside it is ours). A name whose labels file
    another format's model beside it owns is refused (``m.onnx`` and ``m.xml`` would share ``m.labels.txt``)."""
    files = spec.files(out)
    if not spec.suffix:
        return {out: spec.kind}
    root = out[:-len(spec.suffix)]
    for other in FORMATS.values():
        if other.suffix and other is not spec and os.path.lexists(root + other.suffix):
            raise publish.OutputExistsError(
                f"{root + other.suffix} is beside {out}: both would own {files[-1]} (NAME.labels.txt holds the class "
                f"names of NAME's model); choose another --out name (nothing was written)")

    def unit_of_ours(_):
        return os.path.isfile(out) and spec.kind.recognizes(out)

    kinds = {out: spec.kind}
    for path in files[1:-1]:
        kinds[path] = publish.Kind(f"a file of the {spec.name} model {out} written by keras-convnets", unit_of_ours)
    kinds[files[-1]] = publish.Kind(f"the class names of the {spec.name} model {out}",
                                    lambda path: publish.is_labels_file(path) and unit_of_ours(path))
    return kinds


# ------------------------------------------------------------------------------------------- the function --

def _view(saved_model):

    size = savedmodel.input_size(saved_model)
    return size, savedmodel.crop_fraction(saved_model), savedmodel.interpolation(saved_model)


def _classifier_function(saved_model):
    """A ``tf.function`` ``images`` uint8 ``[None, S, S, 3]`` → ``{"probabilities": ...}``: the SavedModel's
    ``preprocessed`` signature (``serving_default`` of an export older than it, which takes that shape)."""
    import tensorflow as tf

    (height, width), _, _ = _view(saved_model)
    name = savedmodel.PREPROCESSED if savedmodel.resizes_images(saved_model) else "serving_default"
    signature = saved_model.signatures[name]

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.uint8, name=savedmodel.SIGNATURE_INPUT)])
    def classify(images):
        return {savedmodel.SIGNATURE_OUTPUT: signature(**{savedmodel.SIGNATURE_INPUT: images})[
            savedmodel.SIGNATURE_OUTPUT]}

    return classify


def frozen_classifier(saved_model):
    """:func:`_classifier_function` with every variable and captured constant folded into the graph (a
    ``ConcreteFunction`` with one input and no captures): what the converters read."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(_classifier_function(saved_model).get_concrete_function())


# ------------------------------------------------------------------------------------------------ the writers --

def _computes_in_float32(saved_model) -> bool:
    """Whether the SavedModel's frozen classifier holds no float16 or bfloat16 tensor (a ``mixed_*`` run's does)."""
    from tensorflow.core.framework import types_pb2

    reduced = {types_pb2.DT_HALF, types_pb2.DT_BFLOAT16}
    for node in frozen_classifier(saved_model).graph.as_graph_def().node:
        for value in node.attr.values():
            if value.type in reduced or reduced & set(value.list.type):
                return False
    return True


def _write_onnx(source: Source, path, quantize=None, calibration=None):
    import onnx
    import tf2onnx

    frozen = frozen_classifier(source.saved_model)
    graph_def = frozen.graph.as_graph_def()
    with _quiet_tensorflow():
        proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=[frozen.inputs[0].name],
                                                  output_names=[frozen.outputs[0].name], opset=ONNX_OPSET)
    renames = {frozen.inputs[0].name: savedmodel.SIGNATURE_INPUT, frozen.outputs[0].name: savedmodel.SIGNATURE_OUTPUT}
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in list(proto.graph.input) + list(proto.graph.output):
        value.name = renames.get(value.name, value.name)
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    (height, _), fraction, method = source.view
    for key, value in (("class_names", json.dumps(list(source.names))), ("image_size", str(height)),
                       ("crop_fraction", repr(fraction)), ("interpolation", method),
                       ("input", f"images uint8 [batch, {height}, {height}, 3] RGB"),
                       ("output", f"probabilities float32 [batch, {len(source.names)}]")):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "keras-convnets"
    onnx.checker.check_model(proto)
    onnx.save(proto, path)


class UnsupportedModelError(ValueError):
    """A SavedModel a format cannot convert (one line, saying what to do instead)."""


def _write_litert(source: Source, path, quantize=None, calibration=None):
    import tensorflow as tf

    if not _computes_in_float32(source.saved_model):
        raise UnsupportedModelError(
            f"{source.directory} computes in float16 or bfloat16 (a --precision mixed_float16 / mixed_bfloat16 run) "
            "and the LiteRT converter takes float32 graphs only: export --format onnx or openvino, or train with "
            "--precision float32 (or bf16, whose SavedModel is float32)")
    frozen = frozen_classifier(source.saved_model)
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


def _write_openvino(source: Source, path, quantize=None, calibration=None):
    import openvino as ov

    model = ov.convert_model(_classifier_function(source.saved_model))
    (height, _), fraction, method = source.view
    model.set_rt_info(json.dumps(list(source.names)), ["keras_convnets", "class_names"])
    model.set_rt_info(str(height), ["keras_convnets", "image_size"])
    model.set_rt_info(repr(fraction), ["keras_convnets", "crop_fraction"])
    model.set_rt_info(method, ["keras_convnets", "interpolation"])
    ov.save_model(model, path, compress_to_fp16=False)  # the default halves the weights to float16


def _write_saved_model(source: Source, path, quantize=None, calibration=None):
    """A copy of the source SavedModel, re-saved (:func:`_resave`) when it lacks ``serving_bytes`` or its class names
    are ImageNet placeholders."""
    current = savedmodel.SERVING_BYTES in source.saved_model.signatures and \
        savedmodel.load_class_names(source.saved_model) == list(source.names)
    if current:
        shutil.copytree(source.directory, path)
    else:
        _resave(source, path)


def _resave(source: Source, path):
    """Saves a ``tf.Module`` that calls the source's signatures, adds ``serving_bytes`` and the class names: an older
    export brought up to the current signatures without its Keras model."""
    import tensorflow as tf

    saved_model, names = source.saved_model, list(source.names)
    (size, _), fraction, method = source.view
    serving = saved_model.signatures["serving_default"]
    classify = _classifier_function(saved_model)
    serving_spec = serving.structured_input_signature[1][savedmodel.SIGNATURE_INPUT]
    labels = publish.write_labels(os.path.join(os.path.dirname(path), savedmodel.LABELS_FILE), names)
    module = tf.Module()
    module.source = saved_model
    savedmodel.record_view(module, labels, size, fraction, method)
    output = savedmodel.SIGNATURE_OUTPUT

    @tf.function(input_signature=[tf.TensorSpec(serving_spec.shape, tf.uint8, name=savedmodel.SIGNATURE_INPUT)])
    def serve(images):
        return {output: serving(**{savedmodel.SIGNATURE_INPUT: images})[output]}

    @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name=savedmodel.BYTES_INPUT)])
    def serve_bytes(image_bytes):
        images = savedmodel.decode_batch(image_bytes, size, fraction, method)
        return {output: tf.cond(tf.shape(images)[0] > 0, lambda: classify(images)[output],
                                lambda: tf.zeros([0, len(names)], tf.float32))}

    @tf.function(input_signature=[])
    def class_names():
        return {"class_names": tf.constant(names)}

    module.serve, module.preprocessed, module.serve_bytes, module.class_names = serve, classify, serve_bytes, \
        class_names
    with _quiet_tensorflow():
        tf.saved_model.save(module, path, signatures=savedmodel.signatures(module))
    # The source's own labels.txt is saved too (it belongs to the restored module) and keeps the plain name, so the
    # file TF Serving users read is written again with the names served.
    publish.write_labels(os.path.join(path, "assets", savedmodel.LABELS_FILE), names)


@contextlib.contextmanager
def _quiet_tensorflow():
    """TensorFlow's Python logger at ERROR for the duration: the converters' deprecation notices about TF1 APIs
    they call are not the user's business."""
    with savedmodel.tensorflow_logger_at("ERROR"):
        yield


# ------------------------------------------------------------------------------------------------ the runtimes --

def _run_onnx(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: np.asarray(images, np.uint8)})[0]


def _run_litert(path):
    from ai_edge_litert.interpreter import Interpreter

    run = Interpreter(model_path=path).get_signature_runner()
    return lambda images: run(images=np.asarray(images, np.uint8))["probabilities"]


def _run_openvino(path):
    import openvino as ov

    # OpenVINO's CPU plugin computes in bfloat16 by default on CPUs with AVX512-BF16 or AMX (3 significant digits:
    # 1e-2 off on trained models); the export's contract is float32.
    compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda images: compiled(np.asarray(images, np.uint8))[0]


def _run_saved_model(path):
    saved_model = savedmodel.load(savedmodel.saved_model_dir(path))
    signature = savedmodel.PREPROCESSED if savedmodel.resizes_images(saved_model) else "serving_default"
    return lambda images: savedmodel.predict(saved_model, np.asarray(images, np.uint8), signature=signature)


def runner(path: str) -> Callable:
    """A function ``uint8 [batch, S, S, 3] → float32 [batch, classes]`` running the exported file ``path`` in its
    own runtime (the format told by its suffix: onnxruntime, ai-edge-litert's interpreter, OpenVINO), or a
    SavedModel directory's ``preprocessed`` signature."""
    spec = format_of(path)
    require(spec.name)
    return spec.runner(str(path))


def _in_batches(run, images, batch_size=64):
    return np.concatenate([np.asarray(run(images[i:i + batch_size]), np.float32)
                           for i in range(0, len(images), batch_size)])


# --------------------------------------------------------------------------------------------- calibration --

def _run_record(saved_model_path):

    found = run_directory.run_of_saved_model(saved_model_path)
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
    kwargs = {key: recorded[key] for key in ("holdout_fraction", "split_seed") if key in recorded and
              recorded.get("dataset") == dataset}
    description = catalog.describe(dataset, image_size=size, augmentation="imagenet" if fraction < 1 else "none",
                                    statistics=catalog.PLACEHOLDER_STATISTICS, data_dir=data_dir, **kwargs)
    train_view = dataclasses.replace(description, evaluation=description.train)
    images = []
    for batch, _ in pipelines.eval_dataset(train_view, 128, crop_fraction=fraction if fraction < 1 else None,
                                          interpolation=method).as_numpy_iterator():
        images.append(batch)
        if sum(len(b) for b in images) >= count:
            break
    images = np.concatenate(images)[:count]
    return images, f"{len(images)} images of {dataset}'s {description.train.label(description.name)} split"


# ---------------------------------------------------------------------------------------------------- export --

def export(source: str, format: str, out: str, *, quantize: Optional[str] = None,
           calibration_dataset: Optional[str] = None, calibration_images: int = CALIBRATION_IMAGES,
           data_dir: Optional[str] = None, check_images: Optional[np.ndarray] = None) -> "ExportResult":
    """Writes the model of ``source`` (a ``train --out`` directory or one of our SavedModels) as ``format`` at
    ``out`` (``NAME.onnx``, ``NAME.tflite``, ``NAME.xml`` + ``NAME.bin``, or a SavedModel directory), its class
    names beside it, checks the file in its runtime against the SavedModel and returns what was written.

    Args:
        source: a ``train --out`` directory or a SavedModel directory of this package.
        format: a name of :data:`FORMATS`.
        out: where to write; refused (:class:`keras_convnets.publish.OutputExistsError`) if it exists and is not an
            earlier export of the same format by this package.
        quantize: ``"int8"`` (format ``"litert"``): full-integer quantization calibrated on ``calibration_images``
            training images of the run (``calibration_dataset``: another tfds name or folder, or the one for a
            SavedModel without ``run.json``), then checked on up to 64 further training images.
        data_dir: the tensorflow_datasets directory of the calibration data.
        check_images: uint8 ``[n, S, S, 3]`` images in the evaluation view to compare on (default: 8 random
            images, or the int8 check images).

    Returns:
        An :class:`ExportResult`.
    """
    spec = _check_arguments(format, out, quantize, calibration_images)
    require(format)
    out = os.path.abspath(os.fspath(out))
    unit = _unit(spec, out)
    for path, kind in unit.items():  # before any work: a refused --out costs nothing
        publish.check_replaceable(path, kind)
    source = _source(str(source))
    if source.directory == out:
        checks.fail("out", "another directory than the SavedModel exported", out)
    calibration, held, calibration_note = None, None, ""
    if quantize:
        calibration, held, calibration_note = _calibration(source, calibration_images, calibration_dataset,
                                                           data_dir)
    (height, width), fraction, method = source.view
    check_images = _check_images(held if check_images is None else check_images, height, width)
    with publish.publishing(unit) as staged:
        spec.write(source, staged[out], quantize, calibration)
        if spec.suffix:
            publish.write_labels(staged[spec.labels_path(out)], source.names)
        difference, agreement = _compare(source, spec, staged[out], check_images)
        if not quantize and not difference <= PARITY_ATOL:
            raise ExportError(f"the {format} file does not reproduce the SavedModel (max probability difference "
                              f"{difference:.3g} > {PARITY_ATOL:g}); {out} was left unchanged")
    files = tuple(unit)
    model_files = files[:-1] if spec.suffix else files
    return ExportResult(format, out, files, spec.labels_path(out), source.names, (height, width, 3) if spec.suffix
                        else None, fraction, method, quantize, publish.size_of(model_files), difference, agreement,
                        len(check_images), calibration_note)


def _source(path: str) -> Source:
    """The SavedModel at ``path`` (a run directory or a SavedModel), loaded, with its class names and view."""
    directory = os.path.abspath(savedmodel.saved_model_dir(path))
    saved_model = savedmodel.load(directory)
    names = tuple(imagenet.readable(savedmodel.load_class_names(saved_model)))
    return Source(directory, saved_model, names, _view(saved_model))


def _calibration(source: Source, count, dataset, data_dir):
    """``(calibration images, check images, what they are)`` of an int8 export: ``count`` training images of the
    run (:func:`training_images`) to calibrate on, and up to :data:`INT8_CHECK_IMAGES` further ones to check it
    with."""
    pulled, note = training_images(source.directory, source.saved_model, count + INT8_CHECK_IMAGES, dataset,
                                   data_dir)
    if len(pulled) <= count:
        where = "--calibration-dataset NAME|FOLDER to calibrate on another set" if dataset is None else \
            "another --calibration-dataset"
        raise ValueError(f"int8 calibration uses {count} training images and checks on at least one more, but "
                         f"{note.split(' images of ', 1)[1]} has {len(pulled)}: pass --calibration-images below "
                         f"{len(pulled)} (calibration_images), or {where}")
    calibration, held = pulled[:count], pulled[count:]
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


def _compare(source: Source, spec: Format, path, check_images):
    """``(max probability difference, top-1 agreement)`` of the model written at ``path`` with the source
    SavedModel on ``check_images``, each run in its own runtime; a SavedModel's ``serving_bytes`` is compared too
    (on the images PNG-encoded: lossless, so it must give the same probabilities)."""
    expected = _in_batches(runner(source.directory), check_images)
    got = _in_batches(spec.runner(path), check_images)
    difference = float(np.max(np.abs(got - expected)))
    if not spec.suffix:
        difference = max(difference, float(np.max(np.abs(_from_png(savedmodel.load(path), check_images) - expected))))
    agreement = float(np.mean(got.argmax(-1) == expected.argmax(-1)))
    return difference, agreement


def _from_png(saved_model, images):
    """A SavedModel's ``serving_bytes`` probabilities of ``images`` encoded as PNG files."""
    import tensorflow as tf

    encoded = tf.constant([tf.io.encode_png(image).numpy() for image in images])
    return saved_model.signatures[savedmodel.SERVING_BYTES](**{savedmodel.BYTES_INPUT: encoded})[
        savedmodel.SIGNATURE_OUTPUT].numpy()


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


# ----------------------------------------------------------------------------------------------- the table --

register_format(Format("saved_model", "our SavedModel with every signature (serving_bytes included)",
                       _write_saved_model, _run_saved_model, publish.SAVED_MODEL))
register_format(Format("onnx", "ONNX (extra [onnx])", _write_onnx, _run_onnx, publish.ONNX, suffix=".onnx",
                       extra="onnx", modules=("tf2onnx", "onnx", "onnxruntime")))
register_format(Format("litert", "LiteRT, float32 or --quantize int8 (extra [litert])", _write_litert, _run_litert,
                       publish.LITERT, suffix=".tflite", extra="litert", modules=("ai_edge_litert",),
                       quantizations=("int8",)))
register_format(Format("openvino", "OpenVINO IR, NAME.xml + NAME.bin (extra [openvino])", _write_openvino,
                       _run_openvino, publish.OPENVINO, suffix=".xml", companions=(".bin",), extra="openvino",
                       modules=("openvino",)))

#: File name endings of the file formats (``saved_model`` is a directory).
SUFFIXES = {name: spec.suffix for name, spec in FORMATS.items() if spec.suffix}


__all__ = ["export", "runner", "register_format", "Format", "ExportResult", "ExportError", "MissingExtraError",
           "FORMATS"]
