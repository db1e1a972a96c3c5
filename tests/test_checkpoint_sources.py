"""Named checkpoint sources and file detection, without PyTorch: the table, the offline error, the missing extra."""

import zipfile

import numpy as np
import pytest

import keras_convnets as kc
from keras_convnets.models import checkpoints, pretrained, registry, torch_weights
from keras_convnets.models.backend import keras


def test_every_torchvision_file_name_carries_its_hash_prefix_and_url():
    for name, entries in torch_weights.PUBLISHED.items():
        assert name in registry.REGISTRY
        torchvision = [e for e in entries if e.source == "torchvision"]
        assert torchvision and torchvision[0].tag == "v1"
        for entry in torchvision:
            assert entry.url == "https://download.pytorch.org/models/" + entry.file_name
            assert entry.file_name.endswith(f"-{entry.sha256_prefix}.pth") and len(entry.sha256_prefix) == 8
        for entry in entries:
            assert entry.preprocessing.mean == (0.485, 0.456, 0.406) and entry.preprocessing.input_size == 224


def test_named_sources_resolve_and_unknown_ones_say_what_exists():
    assert pretrained.published_checkpoint("resnet50", "torchvision:v2").file_name == "resnet50-11ad3fa6.pth"
    assert pretrained.published_checkpoint("densenet121", "timm").tag == "tv_in1k"
    assert pretrained.published_checkpoint("densenet121", "timm:densenet121.ra_in1k").preprocessing \
        .interpolation == "bicubic"
    with pytest.raises(ValueError, match=r"unknown timm tag.*'timm:tv_in1k'"):
        kc.DenseNet161(weights="timm:a1_in1k")
    with pytest.raises(ValueError, match="publish checkpoints only for .*this architecture has none"):
        kc.DenseNet264(weights="torchvision")
    # sources are found by architecture: a display name changes nothing, a keras-layout ResNet-50 is pointed onward
    with pytest.raises(ValueError, match=r"unknown timm tag for 'densenet161'"):
        kc.DenseNet161(weights="timm:a1_in1k", name="backbone")
    with pytest.raises(ValueError, match=r"keras.applications' layout.*ResNet\(50, layout=\"torchvision\"\)"):
        kc.ResNet50(weights="torchvision")


def test_offline_error_names_the_file_and_the_way_out(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(kc.WeightsUnavailableError) as error:
        kc.ResNet18(weights="torchvision", input_shape=(64, 64, 3))
    message = str(error.value)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert "local path as weights=" in message and "resnet18-f37072fd.pth" in message


def test_files_are_told_apart_by_content(tmp_path):
    keras_file = tmp_path / ("m.weights.h5")
    kc.ResNet20().save_weights(str(keras_file))
    assert checkpoints.checkpoint_format(keras_file) is None       # left to model.load_weights, as before
    pickle = tmp_path / "m.pth"
    with zipfile.ZipFile(pickle, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    assert checkpoints.checkpoint_format(pickle) == "torch"
    from safetensors.numpy import save_file

    tensors = tmp_path / "m.bin"   # the extension does not matter
    save_file({"a": np.zeros(3, np.float32)}, str(tensors))
    assert checkpoints.checkpoint_format(tensors) == "safetensors"


def test_a_torch_file_without_torch_names_the_extra(tmp_path, monkeypatch):
    import sys

    pickle = tmp_path / "m.pth"
    with zipfile.ZipFile(pickle, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "keras-convnets\[torch\]"'):
        kc.ResNet18(weights=str(pickle))


def test_readme_column_names_the_sources():
    assert pretrained.pretrained_sources("resnet18") == "torchvision, timm"
    assert pretrained.pretrained_sources("densenet121") == "keras.applications, torchvision, timm"
    assert "layout=\"torchvision\"" in pretrained.pretrained_sources("resnet50")
    assert pretrained.pretrained_sources("resnet20") == "-"


def test_fine_tuning_takes_a_named_source_as_it_is():
    from keras_convnets.models import registry
    from keras_convnets.training import plan

    assert plan._check_weights(registry.model_info("resnet18"), "timm:tv_in1k", 2) == ("timm:tv_in1k", 2)
    with pytest.raises(ValueError, match="keras.applications' layout"):
        plan._check_weights(registry.model_info("resnet50"), "torchvision", None)


def test_every_published_file_is_one_record_of_its_file_and_its_input():
    """Issue 19: each set of published weights is one PretrainedWeights record (file, hash, expected input, classes),
    and the fine-tuning normalisation is the record's."""
    from keras_convnets.data import catalog

    records = pretrained.records()
    assert len({(r.model, r.source, r.tag) for r in records}) == len(records)
    assert {r.source for r in records} == {"keras.applications", "torchvision", "timm"}
    for record in records:
        assert record.url.endswith(record.file_name) or record.source == "timm"
        assert record.md5 or record.sha256_prefix or record.source == "timm"
        assert record.preprocessing.input_size == 224 and record.preprocessing.channel_order in ("rgb", "bgr")
    notop = pretrained.KERAS_APPLICATIONS["resnet50"].record(False)
    assert notop.preprocessing.channel_order == "bgr" and notop.class_names is None
    assert notop.md5 == "4d473c1dd8becc155b73f8504c6f6626" and notop.file_name.endswith("_notop.h5")
    assert catalog.imagenet_statistics("resnet50").reverse_channels
    assert catalog.imagenet_statistics("resnet50v2").mean == (0.5, 0.5, 0.5)
    assert catalog.imagenet_statistics("resnet18").mean == pretrained.IMAGENET_MEAN
    assert catalog.pretrained_statistics("resnet50", "torchvision:v2").std == pretrained.IMAGENET_STD
