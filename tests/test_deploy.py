"""Deployment (keras_convnets/formats.py): ONNX, LiteRT (float32, int8) and OpenVINO files against the SavedModel on
real CIFAR-10 images, the SavedModel's ``serving_bytes`` signature, the ImageNet class names.

The converters and runtimes are optional extras (``[onnx]``, ``[litert]``, ``[openvino]``): their tests skip with the
reason when one is missing, except under KERAS_CONVNETS_REQUIRE_DEPLOY=1 (.ci/run sets it), where they fail.

Models get random batch-norm statistics and affine parameters before export: an untrained model's BN is near the
identity and the same everywhere, which would hide a wrongly converted normalization (the bug of the LiteRT converter
reading a restored SavedModel's captured constants as inputs, NaN out, was found this way).
"""

import importlib
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_convnets import cli
from keras_convnets.data import catalog, pipelines, preprocessing, transforms
from keras_convnets.models import imagenet, registry
from keras_convnets.serving import formats
from keras_convnets.serving import saved_model as savedmodel
from tests._data_dir import real_data_dir, requires_cifar10
from tests._extras import needs_format

# ------------------------------------------------------------------------------------------ ImageNet names --

def test_imagenet_classes_are_tfds_label_file_in_order_with_wordnet_names():
    assert imagenet.imagenet_wordnet_ids() == imagenet._tfds_wordnet_ids()  # the classifiers' order is tfds'
    names = imagenet.imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench" and names[2] == "great white shark" and all(names)
    assert names[imagenet.imagenet_wordnet_ids().index("n04086273")] == "revolver"


def test_decode_predictions_top_k_best_first():
    probabilities = np.full((2, 1000), 1e-4, np.float32)
    probabilities[0, [1, 2]] = 0.7, 0.2
    probabilities[1, 999] = 0.9
    top = imagenet.decode_predictions(probabilities, top=2)
    assert [row[0][:2] for row in top] == [("n01443537", "goldfish"), ("n15075141", "toilet tissue")]
    assert top[0][1][1] == "great white shark" and top[0][0][2] == pytest.approx(0.7)
    mine = imagenet.decode_predictions(np.array([[0.1, 0.9]]), top=1, class_names=["cat", "dog"])
    assert mine == [[("1", "dog", pytest.approx(0.9))]]
    with pytest.raises(ValueError, match="top must be a positive integer"):
        imagenet.decode_predictions(probabilities, top=0)
    with pytest.raises(ValueError, match=r"probabilities must be \[batch, 1000\]"):
        imagenet.decode_predictions(np.ones((1, 10)))
    assert imagenet.readable([str(i) for i in range(1000)])[:2] == ["tench", "goldfish"]
    assert imagenet.readable(["cat", "dog"]) == ["cat", "dog"]


# --------------------------------------------------------------------------------------- argument checks --

@pytest.mark.parametrize("argv, message", [
    (["--format", "onnx", "--quantize", "int8", "--out", "m.onnx"], "format must be 'litert' with quantize='int8'"),
    (["--format", "litert", "--out", "m.onnx"], "out must be a file name ending in .tflite for format 'litert'"),
    (["--format", "saved_model", "--out", "m.tflite"], "out must be a directory name for format 'saved_model'"),
    (["--format", "litert", "--quantize", "int8", "--calibration-images", "0", "--out", "m.tflite"],
     "calibration_images must be a positive integer"),
    (["--format", "tflite", "--out", "m.tflite"], "argument --format: invalid choice"),
])
def test_export_command_line_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    assert cli.main(["export", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_extra_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    real_import = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda name, *a: (_ for _ in ()).throw(ImportError(f"No module named {name!r}"))
                        if name == "tf2onnx" else real_import(name, *a))
    assert cli.main(["export", str(tmp_path), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith('pip install "keras-convnets[onnx]"') and "needs tf2onnx" in err and "\n" not in err


# ------------------------------------------------------------------------------------------- the models --

def _randomize_batch_norm(model, seed=0):
    """Random BN statistics and affine parameters, mild enough that logits stay of order 1 (unsaturated softmax)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        name, shape = variable.path if hasattr(variable, "path") else variable.name, tuple(variable.shape)
        if "moving_variance" in name:
            variable.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
        elif "moving_mean" in name:
            variable.assign(rng.normal(0.0, 0.2, shape).astype(np.float32))
        elif "gamma" in name:
            variable.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        elif "beta" in name:
            variable.assign(rng.normal(0.0, 0.2, shape).astype(np.float32))
    return model


def _unit_logits(model, backbone, images):
    """Scales the classifier so the logits have standard deviation 2 on ``images``: random BN statistics can grow a
    deep DenseNet's features a hundredfold, saturating the softmax (probabilities 0 or 1 agree whatever the error)."""
    from keras_convnets.models.backend import keras

    head = backbone.get_layer("predictions")
    features = keras.Model(backbone.input, head.input)(model.get_layer("normalize")(images)).numpy()
    kernel, bias = head.get_weights()
    logits = features @ kernel + bias
    head.set_weights([kernel * (2.0 / logits.std()), bias * 0.0])


#: (registered model, input size, kwargs): ResNet-18 at 64x64 (its ImageNet stem leaves 2x2 before pooling) to keep
#: the test small; the exported function is the same at any size.
MODELS = {"resnet20": (32, {}), "resnet18": (64, {"classes": 10}), "densenet_bc_100": (32, {})}
#: ResNet-20 in every run (CI's too); ResNet-18 (the ImageNet stem: stride-2 7x7 conv, max-pool, projections) and
#: DenseNet-BC-100 (100 layers of concatenations and transition pooling) with `pytest -m slow`: our export code is
#: the same for all three, and what the bigger two add (the converters' handling of their ops) costs CI four minutes.
MODEL_MARKS = {"resnet20": [], "resnet18": [pytest.mark.slow], "densenet_bc_100": [pytest.mark.slow]}


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _real_images(size, count=16):
    """``count`` real CIFAR-10 test images in the evaluation view at ``size`` (resized as the SavedModel would)."""
    batch, _ = next(iter(pipelines.load_dataset("cifar10", "test", batch_size=count, training=False,
                                           data_dir=real_data_dir())))
    return transforms.eval_transform(batch, size, 1.0).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``name -> SavedModel path`` of each of MODELS with random BN, exported (built on first use)."""
    made = {}

    def get(name):
        if name not in made:
            size, kwargs = MODELS[name]
            info = registry.model_info(name)
            backbone = _randomize_batch_norm(info.factory(input_shape=(size, size, 3), weights=None, **kwargs))
            model = preprocessing.preprocessing_model(backbone, catalog.dataset_spec("cifar10"), (size, size, 3))
            _unit_logits(model, backbone, _real_images(size, 64))
            path = str(tmp_path_factory.mktemp(name) / "saved_model")
            made[name] = savedmodel.export_saved_model(model, path, CIFAR10_CLASSES)
        return made[name]

    return get


@requires_cifar10
@pytest.mark.parametrize("name", [pytest.param(name, marks=MODEL_MARKS[name]) for name in MODELS])
@pytest.mark.parametrize("format", ["onnx", "litert", "openvino"])
def test_float_export_gives_the_saved_models_probabilities(exported, tmp_path, name, format):
    needs_format(format)
    size = MODELS[name][0]
    images = _real_images(size)
    saved_model = exported(name)
    out = str(tmp_path / f"{name}{formats.SUFFIXES[format]}")
    result = formats.export(saved_model, format, out, check_images=images)
    got = formats.runner(out)(images)
    expected = formats.runner(saved_model)(images)
    # Not a vacuous comparison: the randomized model's answers vary with the image and are not saturated.
    assert expected.max(-1).mean() < 0.99 and expected.std(0).max() > 1e-2
    # The same float32 function computed by another runtime's kernels (other summation orders, Winograd or direct
    # convolutions, fused BN): with rounding errors of relative size eps = 6e-8 accumulating like a random walk
    # over the K <= 4,608 products of a dot product and the <= 100 layers of a path, logits of order 1 move by about
    # eps * sqrt(K * 100) = 4e-5 at worst, and softmax's Jacobian (norm <= 1/2) halves that: the 1e-4 bound the issue
    # asks for holds with room on every x86 CPU (measured 2e-7 to 1e-6 on an AMX Xeon; OpenVINO is told to compute in
    # float32, not its default bfloat16 there).
    print(f"parity {name} {format}: max probability difference {np.max(np.abs(got - expected)):.2g}")
    assert np.max(np.abs(got - expected)) <= formats.PARITY_ATOL
    assert result.max_difference <= formats.PARITY_ATOL and result.input_shape == (size, size, 3)
    assert open(formats.labels_path(out)).read().split("\n")[:2] == ["airplane", "automobile"]
    assert np.array_equal(got.argmax(-1), expected.argmax(-1)) or np.max(np.abs(got - expected)) < 1e-6


@requires_cifar10
def test_int8_litert_is_integer_smaller_and_calibrated_on_the_runs_training_set(exported, tmp_path):
    needs_format("litert")
    from ai_edge_litert.interpreter import Interpreter

    saved_model = exported("resnet20")
    run_dir = os.path.dirname(saved_model)
    with open(os.path.join(run_dir, "run.json"), "w") as f:  # what `train` records: the run's dataset
        json.dump({"arguments": {"dataset": "cifar10"}, "data": {"dataset": "cifar10"}}, f)
    float_file, int8_file = str(tmp_path / "f32.tflite"), str(tmp_path / "int8.tflite")
    formats.export(run_dir, "litert", float_file)
    result = formats.export(run_dir, "litert", int8_file, quantize="int8", calibration_images=64,
                           data_dir=real_data_dir())
    assert result.calibration == "64 images of cifar10's train split" and result.check_images == 64
    interpreter = Interpreter(model_path=int8_file)
    ops = {op["op_name"]: op for op in interpreter._get_ops_details()}
    tensors = interpreter.get_tensor_details()
    conv_types = {tensors[i]["dtype"] for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"
                  for i in op["inputs"] if i >= 0}
    assert conv_types <= {np.int8, np.int32} and "CONV_2D" in ops  # weights, activations int8; biases int32
    # Weights 4x smaller; the int32 biases and the graph keep it above a quarter of the float file (0.29 measured).
    assert os.path.getsize(int8_file) < 0.35 * os.path.getsize(float_file)
    images = _real_images(32, 64)
    got, expected = formats.runner(int8_file)(images), formats.runner(saved_model)(images)
    # An int8 softmax: probabilities are multiples of 1/256 (dequantized exactly in float32).
    assert np.allclose(got * 256, np.round(got * 256), atol=1e-3)
    # int8 rounding flips only images whose top two logits are close; a wrong scale or zero point (raw pixels are
    # uint8 with scale 1, zero point 0) would make the answers unrelated to the float model's (~10% agreement).
    assert np.mean(got.argmax(-1) == expected.argmax(-1)) >= 0.75


# ------------------------------------------------------------------------------------- encoded images --

@requires_cifar10
def test_serving_bytes_decodes_png_and_jpeg_like_serving_default(exported):
    saved_model = savedmodel.load(exported("resnet20"))
    serve_bytes = saved_model.signatures[savedmodel.SERVING_BYTES]
    images = _real_images(32, 4)
    big = tf.image.resize(images[:1], (45, 60)).numpy().round().astype(np.uint8)[0]  # resized by the signature
    png = [tf.io.encode_png(image).numpy() for image in images]
    jpeg = tf.io.encode_jpeg(big, quality=90).numpy()
    decoded = tf.io.decode_jpeg(jpeg).numpy()
    # PNG is lossless and the view is serving_default's, so a batch gives the decoded pixels' results exactly, as
    # long as the batch has the same shape: its composition decides the kernels' blocking (oneDNN on AVX2 gave
    # 2e-7 between a JPEG alone and in a batch of five), so a mixed batch is held to the bound of any float32
    # reordering, formats.PARITY_ATOL.
    got_png = serve_bytes(image_bytes=tf.constant(png))[savedmodel.SIGNATURE_OUTPUT].numpy()
    assert np.array_equal(got_png, savedmodel.predict(saved_model, images))
    got_jpeg = serve_bytes(image_bytes=tf.constant([jpeg]))[savedmodel.SIGNATURE_OUTPUT].numpy()
    assert np.array_equal(got_jpeg, savedmodel.predict(saved_model, decoded[None]))
    mixed = serve_bytes(image_bytes=tf.constant(png + [jpeg]))[savedmodel.SIGNATURE_OUTPUT].numpy()
    assert np.max(np.abs(mixed - np.concatenate([got_png, got_jpeg]))) <= formats.PARITY_ATOL
    assert serve_bytes(image_bytes=tf.constant([], tf.string))[savedmodel.SIGNATURE_OUTPUT].shape == (0, 10)


@requires_cifar10
def test_bad_bytes_are_a_clear_error_and_the_model_keeps_serving(exported):
    saved_model = savedmodel.load(exported("resnet20"))
    serve_bytes = saved_model.signatures[savedmodel.SERVING_BYTES]
    good = tf.io.encode_png(_real_images(32, 1)[0]).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes item\] \[1\] \[is not a JPEG, PNG"):
        serve_bytes(image_bytes=tf.constant([good, b"<html>not an image</html>"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes item\] \[0\] \[is truncated"):
        serve_bytes(image_bytes=tf.constant([tf.io.encode_jpeg(_real_images(32, 1)[0]).numpy()[:200]]))
    assert serve_bytes(image_bytes=tf.constant([good]))[savedmodel.SIGNATURE_OUTPUT].shape == (1, 10)


@requires_cifar10
def test_check_images_must_hold_an_image_and_nothing_is_written(exported, tmp_path):
    """A check on no image would pass any file: refused before anything is written, as every shape mismatch is."""
    for images, shape in ((np.zeros((0, 32, 32, 3), np.uint8), "(0, 32, 32, 3)"),
                          (np.zeros((2, 16, 16, 3), np.uint8), "(2, 16, 16, 3)")):
        with pytest.raises(ValueError, match=re.escape(f"check_images must be uint8 images of shape [n >= 1, 32, 32, "
                                                       f"3]; got {shape}")):
            formats.export(exported("resnet20"), "saved_model", str(tmp_path / "copy"), check_images=images)
    assert not (tmp_path / "copy").exists()


def test_old_imagenet_export_is_resaved_with_names_and_the_bytes_signature(tmp_path, capsys):
    """An export with placeholder ImageNet classes "0".."999" (what `convert --export` wrote before) comes out of
    `export --format saved_model` with the names and serving_bytes, computing the same probabilities; `predict`
    prints names for the old one too."""
    from keras_convnets import ResNet20

    model = preprocessing.preprocessing_model(_randomize_batch_norm(ResNet20(classes=1000)),
                                              catalog.dataset_spec("cifar10"), (32, 32, 3))
    old = savedmodel.export_saved_model(model, str(tmp_path / "old"), [str(i) for i in range(1000)])
    result = formats.export(old, "saved_model", str(tmp_path / "new"))
    new = savedmodel.load(result.path)
    assert savedmodel.load_class_names(new)[:2] == ["tench", "goldfish"] and result.max_difference == 0.0
    assert open(os.path.join(result.path, "assets", "labels.txt")).readline() == "tench\n"
    images = np.random.default_rng(0).integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    assert np.array_equal(savedmodel.predict(new, images), savedmodel.predict(savedmodel.load(old), images))
    image_file = tmp_path / "image.png"
    image_file.write_bytes(tf.io.encode_png(images[0]).numpy())
    assert cli.main(["predict", old, str(image_file), "--top-k", "1"]) == 0
    printed = capsys.readouterr().out.split(": ", 1)[1].rsplit(" ", 1)[0]
    assert printed in imagenet.imagenet_class_names()
