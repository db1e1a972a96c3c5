"""torchvision / timm checkpoints load into our models and give torchvision's own logits.

The references are torchvision's real modules (``pip install -e ".[torch]"``; .ci/run installs it and sets
KERAS_CONVNETS_REQUIRE_TORCH=1, so there a missing torch fails instead of skipping). Each checkpoint has random
weights and randomised BN statistics, so a wrong transpose, eps or padding shows in the logits (of order 10-100).
Every architecture is compared at 64x64 and at 224x224 (one checkpoint, one model per architecture; ~5 min on 2 cores).
"""

import dataclasses
import os
import sys
import warnings

import numpy as np
import pytest

import keras_convnets as kc
from keras_convnets.models import checkpoints, pretrained, torch_weights
from keras_convnets.models.torch_weights import CheckpointMismatchError

# torchvision imports torch._dynamo, which imports triton (CUDA builds) if present; triton loaded after TensorFlow
# crashes the process (their LLVMs clash). These CPU comparisons need no triton: hide it unless already loaded.
sys.modules.setdefault("triton", None)

if os.environ.get("KERAS_CONVNETS_REQUIRE_TORCH") == "1":
    import torch
    import torchvision
else:
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")

from safetensors.numpy import save_file  # noqa: E402 (after the torch import or skip)

TOLERANCE = 1e-4  # max |difference| / max |logit|
#: torchvision constructor -> ours (all 1000-class, logits out).
ARCHITECTURES = {
    "resnet18": lambda **kw: kc.ResNet18(**kw),
    "resnet34": lambda **kw: kc.ResNet34(**kw),
    "resnet50": lambda **kw: kc.ResNet(50, layout="torchvision", **kw),
    "resnext50_32x4d": lambda **kw: kc.ResNeXt50_32x4d(**kw),
    "resnext101_32x8d": lambda **kw: kc.ResNeXt101_32x8d(**kw),
    "wide_resnet50_2": lambda **kw: kc.WideResNet50_2(**kw),
    "densenet121": lambda **kw: kc.DenseNet121(**kw),
    "densenet161": lambda **kw: kc.DenseNet161(**kw),
    "densenet169": lambda **kw: kc.DenseNet169(**kw),
    "densenet201": lambda **kw: kc.DenseNet201(**kw),
}


def _torchvision_model(name, seed=0, num_classes=1000):
    """torchvision's model with its own random init, then random BN affine parameters and statistics."""
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return model


def _ours(name, **kwargs):
    return ARCHITECTURES[name](input_shape=(None, None, 3), classifier_activation=None, **kwargs)


def _relative_error(reference, ours, size, seed=1):
    x = np.random.default_rng(seed).normal(0, 1, (2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    actual = np.asarray(ours(x.transpose(0, 2, 3, 1), training=False))
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected))), float(np.max(np.abs(expected)))


#: Every architecture at 64x64; at 224x224 too, the size the checkpoints were trained at, one model per family
#: (the deeper ones run the same layer code on the same feature-map sizes, and a 224x224 pass of each costs CI a
#: minute: run `pytest -m slow` for them).
SIZES = {name: (64,) if name in ("resnext101_32x8d", "densenet161", "densenet169", "densenet201") else (64, 224)
         for name in ARCHITECTURES}
CHECKPOINT_CASES = [pytest.param(name, sizes, id=f"{name}-" + "-".join(map(str, sizes))) for name, sizes in
                    SIZES.items()]
CHECKPOINT_CASES += [pytest.param(name, (224,), id=f"{name}-224", marks=pytest.mark.slow) for name, sizes in
                     SIZES.items() if 224 not in sizes]


@pytest.mark.parametrize("name, sizes", CHECKPOINT_CASES)
def test_torchvision_checkpoint_gives_torchvision_logits(name, sizes, tmp_path):
    reference = _torchvision_model(name)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    ours = _ours(name, weights=str(path))
    for size in sizes:
        error, scale = _relative_error(reference, ours, size)
        assert scale > 1.0, f"logits too small to test anything ({scale})"
        assert error < TOLERANCE, f"{name} at {size}x{size}: relative logit error {error:.2e}"


def _timm_file(reference, path):
    """A timm-format .safetensors: timm's ResNet and DenseNet use torchvision's parameter names (timm loads
    torchvision's own files into them strictly), without the num_batches_tracked counters it does not save."""
    save_file({key: value.detach().numpy().copy() for key, value in reference.state_dict().items()
               if not key.endswith("num_batches_tracked")}, str(path))


@pytest.mark.parametrize("name", ["resnet34", "densenet121"])
def test_timm_safetensors_checkpoint_loads_and_matches(name, tmp_path):
    reference = _torchvision_model(name, seed=3)
    path = tmp_path / "model.safetensors"
    _timm_file(reference, path)
    assert checkpoints.checkpoint_format(path) == "safetensors"
    ours = _ours(name)
    report = torch_weights.load_checkpoint(ours, path)
    assert report.skipped == [] and report.loaded == len(ours.weights)
    error, _ = _relative_error(reference, ours, 64)
    assert error < TOLERANCE
    # keras.applications' DenseNet keeps its eps 1.001e-5; the checkpoint's 1e-5 is folded into the variance
    bn = ours.get_layer("conv1_bn")
    running_var = reference.state_dict()["features.norm0.running_var" if "dense" in name else "bn1.running_var"]
    np.testing.assert_allclose(np.asarray(bn.moving_variance) + bn.epsilon, running_var.numpy() + 1e-5, rtol=1e-7)


def test_legacy_densenet_key_names_load(tmp_path):
    """torchvision's published DenseNet files still say 'norm.1' / 'conv.2' inside dense layers."""
    reference = _torchvision_model("densenet121", seed=4)
    state = {}
    for key, value in reference.state_dict().items():
        for part in ("norm1", "conv1", "norm2", "conv2"):
            key = key.replace(f"denselayer{key.split('denselayer')[-1].split('.')[0]}.{part}.",
                              f"denselayer{key.split('denselayer')[-1].split('.')[0]}.{part[:-1]}.{part[-1]}.") \
                if "denselayer" in key else key
        state[key] = value
    assert any(".norm.1." in key for key in state)
    path = tmp_path / "legacy.pth"
    torch.save(state, path)
    ours = _ours("densenet121", weights=str(path))
    assert _relative_error(reference, ours, 64)[0] < TOLERANCE


def test_memory_efficient_densenet_loads_the_same_checkpoint(tmp_path):
    reference = _torchvision_model("densenet121", seed=5)
    path = tmp_path / "d.safetensors"
    _timm_file(reference, path)
    ours = _ours("densenet121", memory_efficient=True, weights=str(path))
    assert _relative_error(reference, ours, 64)[0] < TOLERANCE


def test_include_top_false_skips_the_classifier(tmp_path):
    reference = _torchvision_model("resnet18", seed=6)
    path = tmp_path / "r.safetensors"
    _timm_file(reference, path)
    ours = kc.ResNet18(include_top=False, input_shape=(64, 64, 3))
    report = torch_weights.load_checkpoint(ours, path)
    assert sorted(report.skipped) == ["fc.bias", "fc.weight"]


# --------------------------------------------------------------------------------------------- wrong checkpoints

@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "resnet50.pth"
    torch.save(_torchvision_model("resnet50").state_dict(), path)
    return path


def test_resnet50_file_into_resnet34_names_the_first_misfit(resnet50_file):
    with pytest.raises(CheckpointMismatchError, match=r"tensor 'layer1\.0\.conv1\.weight' .* shape \(64, 64, 1, 1\)"
                                                      r".*conv2_block1_1_conv"):
        kc.ResNet34(weights=str(resnet50_file))


def test_truncated_files_are_refused(resnet50_file, tmp_path):
    data = resnet50_file.read_bytes()
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointMismatchError, match="cannot read .*cut.pth as a PyTorch checkpoint"):
        kc.ResNet(50, layout="torchvision", weights=str(truncated))
    full = tmp_path / "full.safetensors"
    _timm_file(_torchvision_model("resnet18"), full)
    data = full.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointMismatchError, match="cannot read .*cut.safetensors as a safetensors checkpoint"):
        kc.ResNet18(weights=str(cut))


def test_thousand_class_head_into_ten_classes(tmp_path):
    reference = _torchvision_model("resnet18", seed=7)
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match=r"'fc\.weight' .* \(1000, 512\).*'predictions'.*skip_mismatch"):
        kc.ResNet18(classes=10, weights=str(path))
    ours = kc.ResNet18(classes=10, input_shape=(64, 64, 3), include_top=True)
    before = ours.get_layer("predictions").get_weights()
    with pytest.warns(UserWarning, match="skipped the classifier.*1000 classes, the model 10"):
        report = torch_weights.load_checkpoint(ours, path, skip_mismatch=True)
    assert report.skipped == ["fc.weight", "fc.bias"]
    np.testing.assert_array_equal(before[0], ours.get_layer("predictions").get_weights()[0])
    torch_conv1 = reference.state_dict()["conv1.weight"].numpy().transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(ours.get_layer("conv1_conv").get_weights()[0], torch_conv1)


def test_keras_layout_resnet50_is_refused_with_the_way_out(resnet50_file):
    with pytest.raises(ValueError, match=r"keras.applications' layout.*layout=\"torchvision\""):
        kc.ResNet50(weights=str(resnet50_file))


def test_extra_tensor_is_named(tmp_path):
    state = {k: v.numpy().copy() for k, v in _torchvision_model("resnet18").state_dict().items()
             if not k.endswith("num_batches_tracked")}
    state["layer5.0.conv1.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    path = tmp_path / "extra.safetensors"
    save_file(state, str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CheckpointMismatchError, match=r"'layer5\.0\.conv1\.weight' that no layer"):
            kc.ResNet18(weights=str(path))


def test_pth_without_torch_says_what_to_install(resnet50_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'keras-convnets\[torch\]'):
        checkpoints.read_checkpoint(resnet50_file)


def test_named_source_downloads_checks_the_hash_and_records_preprocessing(tmp_path, monkeypatch):
    """A file:// URL stands in for download.pytorch.org; the file name carries the file's real SHA-256 prefix."""
    import hashlib

    source = tmp_path / "served.pth"
    reference = _torchvision_model("resnet18", seed=8)
    torch.save(reference.state_dict(), source)
    prefix = hashlib.sha256(source.read_bytes()).hexdigest()[:8]
    entry = pretrained.PublishedCheckpoint("torchvision", "v1", source.as_uri(), f"resnet18-{prefix}.pth", prefix,
                                           pretrained.Preprocessing(224, 256, "bilinear"))
    monkeypatch.setitem(torch_weights.PUBLISHED, "resnet18", [entry])
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    ours = kc.ResNet18(weights="torchvision", input_shape=(64, 64, 3), classifier_activation=None)
    assert torch_weights.preprocessing_of(ours) == entry.preprocessing
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(x.transpose(0, 2, 3, 1)), expected, atol=1e-4 * np.abs(expected).max())
    bad = dataclasses.replace(entry, sha256_prefix="00000000", file_name="resnet18-00000000.pth")
    monkeypatch.setitem(torch_weights.PUBLISHED, "resnet18", [bad])
    with pytest.raises(kc.WeightsUnavailableError, match="SHA-256 does not start with 00000000"):
        kc.ResNet18(weights="torchvision", input_shape=(64, 64, 3))


def test_convert_command_writes_weights_and_a_saved_model_predict_reads(tmp_path, capsys):
    from PIL import Image

    from keras_convnets import cli

    reference = _torchvision_model("resnet18", seed=9)
    source = tmp_path / "r18.safetensors"
    _timm_file(reference, source)
    out, export = tmp_path / "r18.weights.h5", tmp_path / "sm"
    assert cli.main(["convert", str(source), "resnet18", "--out", str(out), "--export", str(export)]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = kc.ResNet18(weights=str(out), input_shape=(64, 64, 3), classifier_activation=None)
    assert _relative_error(reference, loaded, 64)[0] < TOLERANCE
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(image)
    assert cli.main(["predict", str(export), str(image), "--top-k", "2"]) == 0
    assert capsys.readouterr().out.startswith(f"{image}: ")
    assert cli.main(["convert", str(source), "resnet34", "--out", str(out)]) == 2
    assert "has no tensor 'layer1.2.conv1.weight'" in capsys.readouterr().err


def _view(image, resize_height, resize_width, size, method):
    """The expected centre crop, computed directly: ``image`` resized (unless already that size), then cropped."""
    import tensorflow as tf

    resized = image if image.shape[:2] == (resize_height, resize_width) else np.asarray(tf.cast(tf.clip_by_value(
        tf.round(tf.image.resize(image, (resize_height, resize_width), method=method, antialias=True)), 0, 255),
        tf.uint8))
    top, left = (resize_height - size) // 2, (resize_width - size) // 2
    return resized[top:top + size, left:left + size]


@pytest.mark.parametrize("source, fraction, method, resized", [
    ("file", 224 / 256, "bilinear", (300, 256)),          # torchvision's 256 -> 224: a 300x256 image is only cropped
    ("timm:a1_in1k", 224 / 235, "bicubic", (275, 235)),   # timm's crop_pct 0.95, bicubic: resized to 275x235 first
])
def test_convert_export_serves_the_view_the_weights_expect(source, fraction, method, resized, tmp_path, monkeypatch):
    from keras_convnets import cli
    from keras_convnets.serving import saved_model as savedmodel

    checkpoint = tmp_path / "r18.safetensors"
    _timm_file(_torchvision_model("resnet18", seed=10), checkpoint)
    if source != "file":   # a local stand-in for timm's hub file; its preprocessing is the table's ResNet-strikes-back
        monkeypatch.setitem(torch_weights.PUBLISHED, "resnet18",
                            [pretrained._timm("resnet18", "a1_in1k", pretrained._TIMM_RSB)])
        monkeypatch.setattr(torch_weights, "fetch", lambda name, weights: str(checkpoint))
    saved = tmp_path / "sm"
    argv = ["convert", str(checkpoint) if source == "file" else source, "resnet18", "--out",
            str(tmp_path / "r18.weights.h5"), "--export", str(saved)]
    assert cli.main(argv) == 0
    model = savedmodel.load(str(saved))
    assert savedmodel.crop_fraction(model) == pytest.approx(fraction) and savedmodel.interpolation(model) == method
    image = np.random.default_rng(1).integers(0, 256, (300, 256, 3), dtype=np.uint8)
    expected = savedmodel.predict(model, _view(image, *resized, 224, method)[None], signature="preprocessed")
    np.testing.assert_allclose(savedmodel.predict(model, image[None]), expected, atol=1e-5)
    if method != "bilinear":  # the bicubic view is not the bilinear one, and the model tells them apart
        bilinear = savedmodel.predict(model, _view(image, *resized, 224, "bilinear")[None], signature="preprocessed")
        assert np.max(np.abs(bilinear - expected)) > 1e-3


def test_memory_efficient_densenet_from_a_named_source_records_its_preprocessing(tmp_path, monkeypatch):
    """The memory-efficient DenseNet loads through its plain twin; the preprocessing record must reach the model
    returned, not stay on the twin. A local file stands in for torchvision's download."""
    reference = _torchvision_model("densenet121", seed=11)
    path = tmp_path / "d121.safetensors"
    _timm_file(reference, path)
    monkeypatch.setattr(torch_weights, "fetch", lambda name, weights: str(path))
    ours = _ours("densenet121", memory_efficient=True, weights="torchvision")
    assert torch_weights.preprocessing_of(ours) == pretrained.published_checkpoint("densenet121",
                                                                                   "torchvision").preprocessing
    assert _relative_error(reference, ours, 64)[0] < TOLERANCE
