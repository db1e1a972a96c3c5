"""FLOPs (multiply-adds, torchvision convention) counted from built models, and the registry's stored figures."""

import pytest

from keras_convnets.models import flops, registry
from keras_convnets.models.backend import keras

# torchvision / paper figures in multiply-adds: (registered name, expected, relative tolerance)
KNOWN = [
    ("resnet20", 40.55e6, 0.01),           # He et al. 2015 CIFAR ResNet-20: ~41M
    ("resnet18", 1.814e9, 0.01),           # torchvision 1.81 GFLOPS
    ("resnext50_32x4d", 4.23e9, 0.01),     # torchvision 4.23
    ("densenet121", 2.83e9, 0.01),         # torchvision 2.83
    ("wrn_28_10", 5.25e9, 0.01),           # Zagoruyko & Komodakis: 5.25G
]

# A handful checked against the stored registry figure on every run; the whole registry in the slow check.
QUICK = ["resnet20", "resnet50", "resnet50v2", "densenet121", "densenet_bc_100", "wrn_16_4", "resnext29_8x64d"]


@pytest.mark.parametrize("name,expected,tolerance", KNOWN)
def test_flops_match_published_figures(name, expected, tolerance):
    assert flops.count_flops(registry.get_model(name)) == pytest.approx(expected, rel=tolerance)


@pytest.mark.parametrize("name", QUICK)
def test_registry_flops_match_the_counted_model(name):
    assert registry.model_info(name).flops == flops.count_flops(registry.get_model(name))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in registry.list_models() if n not in QUICK])
def test_every_registry_flops_entry(name):
    assert registry.model_info(name).flops == flops.count_flops(registry.get_model(name))


def test_flops_scale_with_input_area_and_keras_applications_agrees():
    ours = flops.count_flops(registry.get_model("resnet50", input_shape=(64, 64, 3)))
    theirs = flops.count_flops(keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3)))
    assert ours == theirs
    # Convs scale with the area (the classifier does not): 224/64 = 3.5, so ~12.25x.
    assert registry.model_info("resnet50").flops / ours == pytest.approx(3.5 ** 2, rel=0.01)


def test_grouped_depthwise_separable_and_dense_layers():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", groups=2)(inputs)          # 64 * (3*3*2*8) = 9216
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)                    # 64 * (3*3*8) = 4608
    x = keras.layers.SeparableConv2D(16, 1, strides=2)(x)                     # 16 * (8 + 8*16) = 2176
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10)(x)                                       # 160
    inner = keras.Model(inputs, outputs)
    assert flops.count_flops(inner) == 9216 + 4608 + 2176 + 160
    wrapped = keras.Sequential([keras.Input((8, 8, 4)), inner])
    assert flops.count_flops(wrapped) == flops.count_flops(inner)


def test_dynamic_input_size_is_refused_with_a_reason():
    model = registry.get_model("resnet20", input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="static input size"):
        flops.count_flops(model)


def test_markdown_table_shows_flops():
    table = registry.markdown_table()
    assert "FLOPs" in table.splitlines()[0]
    assert "| 40.6M |" in table and "| 2.83G |" in table


def test_format_flops():
    assert flops.format_flops(4.1e9) == "4.10G"
    assert flops.format_flops(40.55e6) == "40.5M" or flops.format_flops(40.55e6) == "40.6M"
    assert flops.format_flops(12.3e9) == "12.3G"


def test_memory_efficient_densenet_counts_the_convs_inside_its_recomputed_layers():
    """Issue 11: the first conv of each dense layer sits inside a RecomputedConv and was not counted (depth 16, k=4:
    120,992 instead of 147,872 multiply-adds)."""
    import keras_convnets as kc

    small = dict(growth_rate=4, input_shape=(8, 8, 3))
    plain = flops.count_flops(kc.CifarDenseNet(16, **small))
    assert plain == 147_872
    assert flops.count_flops(kc.CifarDenseNet(16, memory_efficient=True, **small)) == plain
