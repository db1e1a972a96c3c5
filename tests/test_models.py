"""Every factory against the reference numbers (the papers, keras.applications, torchvision), and a forward pass on
its smallest input.

One row per factory: (factory, trainable params, count_params() or None). Counts do not depend on the input size
(every model ends in global pooling), so each model is built once at its smallest valid input and also run forward.
"""

import numpy as np
import pytest

import keras_convnets as kc
from keras_convnets.models import registry
from keras_convnets.models.backend import keras

#: A deeper row of a spec table runs the same code as a shallower one: the main pass checks its numbers, the passes
#: that change only the Keras or the CPU kernels (tf-keras, the other kernels; see .ci/run) leave it out.
DEEP = pytest.mark.deep
DEEPER_ROWS = (kc.ResNet101, kc.ResNet152, kc.ResNet101V2, kc.ResNet152V2, kc.ResNeXt101_32x8d, kc.DenseNet161,
               kc.DenseNet169, kc.DenseNet201, kc.DenseNet264, kc.ResNet44, kc.ResNet56, kc.ResNet110, kc.ResNet1202,
               kc.PreActResNet1001, kc.WRN28_10, kc.WRN40_4, kc.DenseNet100, kc.DenseNetBC250, kc.DenseNetBC190,
               kc.ResNeXt29_16x64d)

# (factory, kwargs, trainable, count_params) -- count_params includes BN moving mean/variance.
REFERENCE = [
    (kc.ResNet18, {}, 11_689_512, 11_699_112),
    (kc.ResNet34, {}, 21_797_672, 21_814_696),
    (kc.ResNet50, {}, 25_583_592, 25_636_712),
    (kc.ResNet101, {}, 44_601_832, 44_707_176),
    (kc.ResNet152, {}, 60_268_520, 60_419_944),
    (kc.ResNet50V2, {}, 25_568_360, 25_613_800),
    (kc.ResNet101V2, {}, 44_577_896, None),           # keras.applications' own count
    (kc.ResNet152V2, {}, 60_236_904, None),
    (kc.ResNeXt50_32x4d, {}, 25_028_904, 25_097_128),
    (kc.ResNeXt101_32x8d, {}, 88_791_336, None),      # torchvision
    (kc.WideResNet50_2, {}, 68_883_240, None),        # torchvision
    (kc.DenseNet121, {}, 7_978_856, 8_062_504),
    (kc.DenseNet169, {}, 14_149_480, 14_307_880),
    (kc.DenseNet201, {}, 20_013_928, 20_242_984),
    (kc.DenseNet264, {}, 33_337_704, 33_736_232),
    (kc.DenseNet161, {}, 28_681_000, 28_900_936),
    (kc.ResNet20, {}, 269_722, 271_098),
    (kc.ResNet32, {}, 464_154, 466_426),
    (kc.ResNet44, {}, 658_586, 661_754),
    (kc.ResNet56, {}, 853_018, 857_082),
    (kc.ResNet110, {}, 1_727_962, 1_736_058),
    (kc.ResNet1202, {}, 19_421_274, 19_510_906),
    (kc.PreActResNet164, {}, 1_703_258, 1_727_482),
    (kc.PreActResNet1001, {}, 10_327_706, 10_476_922),
    (kc.WRN16_4, {}, 2_748_890, 2_752_506),
    (kc.WRN16_8, {}, 10_961_370, 10_968_570),
    (kc.WRN28_10, {}, 36_479_194, 36_497_146),
    (kc.WRN28_10, {"classes": 100}, 36_536_884, 36_554_836),
    (kc.WRN40_4, {}, 8_949_210, 8_959_994),
    (kc.DenseNet40, {}, 1_019_722, 1_037_818),
    (kc.DenseNet100, {}, 6_979_642, 7_096_858),
    (kc.DenseNetBC100, {}, 769_162, 793_150),
    (kc.DenseNetBC100, {"classes": 100}, 800_032, 824_020),
    (kc.DenseNetBC250, {}, 15_324_406, 15_582_382),
    (kc.DenseNetBC190, {}, 25_624_430, 25_881_390),
    (kc.ResNeXt29_8x64d, {}, 34_426_698, 34_484_170),
    (kc.ResNeXt29_16x64d, {}, 68_155_210, 68_255_690),
]


def trainable_params(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def smallest_input(factory):
    info = next(i for i in registry.REGISTRY.values() if i.factory is factory)
    return info.architecture.min_size


@pytest.mark.parametrize("factory,kwargs,trainable,total",
                         [pytest.param(*row, marks=DEEP) if row[0] in DEEPER_ROWS else row for row in REFERENCE],
                         ids=[f"{f.__name__}{'-' + str(k) if k else ''}" for f, k, _, _ in REFERENCE])
def test_parameter_count_and_forward_on_smallest_input(factory, kwargs, trainable, total):
    size = smallest_input(factory)
    model = factory(input_shape=(size, size, 3), **kwargs)
    assert trainable_params(model) == trainable
    if total is not None:
        assert model.count_params() == total
    # Training mode: batch norm normalizes every branch with the batch's statistics, so the output is well-scaled on
    # every float32 machine. (In inference mode an untrained ResNet-1202 sits at its initial moving statistics and
    # each of its 600 blocks roughly doubles the variance: logits of 2e37 on one CPU, NaN probabilities on another.)
    out = model(np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype("float32"), training=True)
    assert out.shape == (2, kwargs.get("classes", model.output_shape[-1]))
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)


@DEEP
def test_zero_init_residual_makes_resnet1202_the_identity_per_block_and_finite_in_both_modes():
    model = kc.ResNet1202(input_shape=(4, 4, 3), zero_init_residual=True, classifier_activation=None)
    images = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 3)).astype("float32")
    for training in (False, True):
        logits = np.asarray(model(images, training=training))
        # the blocks add zero, so the logits are the stem's features through the classifier: far from overflow
        assert np.all(np.isfinite(logits)) and np.max(np.abs(logits)) < 1e3, (training, np.max(np.abs(logits)))
    stem = keras.Model(model.input, model.get_layer("conv1_relu").output)(images, training=False)
    first = keras.Model(model.input, model.get_layer("conv2_block1_out").output)(images, training=False)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(stem))  # relu(x + 0) = x for x = relu(...)


@pytest.mark.parametrize("factory,zeroed,kept", [
    (kc.ResNet20, "conv2_block1_2_bn", "conv2_block1_1_bn"),            # v1 basic: last BN's gamma
    (kc.ResNet50, "conv2_block1_3_bn", "conv2_block1_0_bn"),            # v1 bottleneck; not the projection's BN
    (kc.WRN16_4, "conv2_block1_2_conv", "conv2_block1_1_conv"),         # pre-activation: last conv
    (kc.PreActResNet164, "conv2_block1_3_conv", "conv2_block1_2_conv"),
])
def test_zero_init_residual_zeroes_the_last_layer_of_each_branch_only(factory, zeroed, kept):
    on, off = factory(zero_init_residual=True), factory()
    assert not np.any(on.get_layer(zeroed).weights[0].numpy()) and np.any(off.get_layer(zeroed).weights[0].numpy())
    assert np.any(on.get_layer(kept).weights[0].numpy())
    with pytest.raises(ValueError, match="zero_init_residual must be False or True"):
        factory(zero_init_residual="yes")


def test_reference_table_covers_every_registered_model_and_agrees_with_the_registry():
    default_rows = {f: t for f, k, t, _ in REFERENCE if not k}
    for info in registry.REGISTRY.values():
        assert info.factory in default_rows, f"{info.name} has no reference row"
        assert info.params == default_rows[info.factory], info.name


def test_counts_table_covers_every_registered_model():
    """counts.py is generated (python -m tools.registry --write); the test above checks its
    parameters against the papers' through REFERENCE, test_flops.py its FLOPs against the built models."""
    assert [name for name, info in registry.REGISTRY.items() if info.params is None or info.flops is None] == []
    from tools import registry as registry_tool

    assert registry_tool.main(["--check"]) == 0


def test_wide_block_alias_builds_the_same_wide_resnet():
    """Behaviour comes from the Architecture's fields, not from which block function it holds: the public
    ``wide_block`` and ``preact_residual_block`` give the same WRN, dropout included."""
    import dataclasses

    from keras_convnets.models import resnet

    arch = resnet.wide_resnet(16, 2)
    for block in (kc.wide_block, kc.preact_residual_block):
        model = resnet.build_resnet(architecture=dataclasses.replace(arch, block=block), dropout=0.3,
                                    input_shape=(8, 8, 3))
        assert trainable_params(model) == trainable_params(kc.WideResNet(16, 2, input_shape=(8, 8, 3)))
        assert model.get_layer("conv2_block1_dropout").rate == 0.3


def test_registration_carries_figures_weights_and_recipe_hints():
    info = registry.model_info("densenet40")
    assert info.figures == {"C10+": 5.24, "C10": 7.00} and info.error == 5.24
    assert info.reference == "C10+ error 5.24%, C10 7.00%"
    assert registry.model_info("resnet50").weights == "resnet50" and registry.model_info("resnet18").weights is None
    assert [name for name, i in registry.REGISTRY.items() if i.warmup] == ["resnet110", "resnet1202"]
    assert registry.model_info("resnet152v2").error == 22.0 and registry.model_info("resnet20").error == 8.75
    assert kc.ResNet20.__doc__.startswith("CIFAR ResNet-20 (C10+ error 8.75%).\n\nArgs:\n")
    assert "Returns:" in kc.ResNet20.__doc__


def test_factories_take_keras_applications_eight_arguments_in_order():
    """include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name: positionally,
    as keras.applications' factories take them (a functools.partial with ``name`` bound could not)."""
    import inspect

    assert list(inspect.signature(kc.ResNet50).parameters)[:8] == [
        "include_top", "weights", "input_tensor", "input_shape", "pooling", "classes", "classifier_activation", "name"]
    model = kc.ResNet20(False, None, None, (8, 8, 3), "max", 10, "softmax", "x")
    assert model.name == "x" and model.output.shape == (None, 64) and model.get_layer("max_pool") is not None
    model = kc.DenseNetBC100(True, None, None, (8, 8, 3), None, 7, None, "y", weight_decay=1e-4)
    assert model.name == "y" and model.output.shape == (None, 7) and model.losses
    assert model.get_layer("predictions").activation.__name__ == "linear"
    assert kc.ResNet20().name == "resnet20" and kc.ResNet20.__name__ == "ResNet20"
    assert kc.ResNet20.__module__ == "keras_convnets.models.resnet"


def test_exports_come_from_the_model_modules_and_import_stays_lazy():
    import importlib
    import subprocess
    import sys

    modules = {name: importlib.import_module(f"keras_convnets.{name}") for name in kc._MODEL_MODULES}
    model_names = [name for module in modules.values() for name in module.__all__]
    assert len(model_names) == len(set(model_names))          # each name in one module
    assert sorted(kc.__all__) == sorted(model_names + list(kc._ABOVE_MODELS))
    for info in registry.REGISTRY.values():
        assert getattr(kc, info.factory.__name__) is info.factory
    assert kc.train.__module__ == "keras_convnets.training.loop"
    assert kc.export.__module__ == "keras_convnets.serving.formats"
    code = ("import sys, keras_convnets; keras_convnets.__all__; dir(keras_convnets); "
            "print(sorted(m for m in ('keras', 'tensorflow', 'tf_keras') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip() == "[]"


def test_minimum_sizes():
    """The smallest input is the total stride: 32 for the ImageNet stems, 4 for the CIFAR three-stage networks."""
    assert smallest_input(kc.ResNet50) == 32
    assert smallest_input(kc.DenseNet121) == 32
    assert smallest_input(kc.ResNet20) == 4
    assert smallest_input(kc.DenseNetBC100) == 4


# One representative per block kind gets a real training step; the big ones are only built above.
TRAIN_STEP = [kc.ResNet20, kc.PreActResNet164, kc.WRN16_4, kc.ResNeXt29_8x64d, kc.DenseNet40, kc.DenseNetBC100,
              kc.ResNet18, kc.ResNet50, kc.ResNet50V2, kc.ResNeXt50_32x4d, kc.DenseNet121]


@pytest.mark.parametrize("factory", TRAIN_STEP, ids=[f.__name__ for f in TRAIN_STEP])
def test_training_step_changes_weights_and_loss_is_finite(factory):
    size = smallest_input(factory)
    model = factory(input_shape=(size, size, 3), classes=5)
    # Eager: one step does not repay tracing a 500-layer graph (2.7 s vs 24 s for PreActResNet164).
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (4, size, size, 3)).astype("float32")
    y = rng.integers(0, 5, (4,))
    before = [w.numpy().copy() for w in model.trainable_weights[:3]]
    loss = model.train_on_batch(x, y)
    loss = float(loss[0] if isinstance(loss, (list, tuple)) else loss)
    assert np.isfinite(loss)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights[:3]))


@pytest.mark.parametrize("name", ["resnet20", "densenet_bc_100", "wrn_28_10", "resnext50_32x4d"])
def test_registry_builds_by_name(name):
    info = registry.model_info(name)
    model = registry.get_model(name, input_shape=(info.input_size,) * 2 + (3,), classes=7)
    assert model.name == name
    assert model.output_shape == (None, 7)


def test_list_models_and_filters():
    names = kc.list_models()
    assert len(names) >= 35 and len(set(names)) == len(names)
    assert set(kc.list_models("cifar")) | set(kc.list_models("imagenet")) == set(names)
    assert "densenet_bc_100" in kc.list_models("cifar") and "densenet121" in kc.list_models("imagenet")
    assert registry.model_info("DenseNet121").name == "densenet121"
    assert registry.model_info("wrn-28-10").name == "wrn_28_10"


def test_public_api_is_explicit():
    for name in kc.__all__:
        assert hasattr(kc, name), name
    assert "DenseNet121" in kc.__all__ and "get_model" in kc.__all__ and "dense_block" in kc.__all__


def test_deep_models_build_whatever_the_callers_stack_depth(monkeypatch):
    """Keras maps a functional graph recursively (a few frames per layer): ResNet-1202 sat at Python's limit and
    failed or passed with the caller's stack depth. Building must not depend on it: here, under a tiny limit."""
    import sys

    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(150)
    try:
        model = kc.ResNet56(input_shape=(8, 8, 3))
    finally:
        sys.setrecursionlimit(previous)
    assert trainable_params(model) == 853_018
