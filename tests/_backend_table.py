"""One Keras backend's answers for tests/test_backends.py's table of models, in one process.

    KERAS_BACKEND=jax python tests/_backend_table.py DIR    # DIR: the weights files, table.json; writes DIR/jax.npz

On TensorFlow, the test calls :func:`prepare` in its own process (each row's random weights, saved as the files every
backend loads, and the row's batch) and :func:`answers`; every other backend runs this file as a script, once for the
whole table. A row's answers, all float32: the logits in inference (``predict``), and after one SGD step
(``train_on_batch``) from the same weights on the same batch, the loss and every weight (BN moving statistics
included). Rows are the families' shallowest forms: the code of the deep ones, in seconds.

The training step is compared where it is a differentiable function of the weights. A ReLU whose input lies within
float32 rounding of zero has a derivative that depends on the rounding (seen: one such input, 4e-8 from zero in a
ResNeXt, moved one layer's update by 1.3% between backends), and so does a max-pool window whose two largest entries
are that close. :func:`prepare` therefore takes, per row, the first batch whose every ReLU input and max-pool gap is at
least :data:`KINK_MARGIN` of its layer's RMS away from the kink, farther than any backend's rounding can move it.
"""

import dataclasses
import json
import os
import sys

import numpy as np

BATCH = 4
LEARNING_RATE = 0.125  # a power of two: the same in float32 and float64, whatever dtype an optimizer keeps it in

#: How far from a kink (a ReLU input from 0, a max-pool window's largest entry from its second) every one of a row's
#: training-mode activations must lie, relative to its layer's RMS. Each backend computes an activation with a float32
#: error of at most u * sqrt(K * D) of that scale (u = 2^-24, K <= 2,304 products per dot product, D <= 40 layers on a
#: path; tests/test_backends.py, LOGITS_RTOL): 1.6e-5. At 1e-4 every backend's value lies on the same side of the kink.
KINK_MARGIN = 1e-4
ATTEMPTS = 200


def rows():
    """``{row: (builder, input size, what the row exercises)}``; builders take the factory's keyword arguments."""
    import keras_convnets as kc
    from keras_convnets.models import densenet, resnet

    def shallow_resnet(arch, name):
        return lambda **kw: resnet.build_resnet(
            architecture=dataclasses.replace(arch, stages=((8, 1), (16, 1), (16, 1), (32, 1)), stem_width=8), name=name,
            **kw)

    narrow_resnext = dataclasses.replace(resnet.cifar_resnext(11, 2, 16), stages=((16, 1), (32, 1), (64, 1)),
                                         stem_width=16)
    shallow_imagenet_densenet = dataclasses.replace(densenet.imagenet_densenet(121), block_sizes=(1, 2, 1, 1),
                                                    growth_rate=4, stem_width=8)
    return {
        "resnet_option_a": (lambda **kw: kc.CifarResNet(8, **kw), 8, "CIFAR ResNet, option-A shortcuts"),
        "preact_resnet": (lambda **kw: kc.PreActResNet(11, **kw), 8, "pre-activation bottleneck, projections"),
        "wrn": (lambda **kw: kc.WideResNet(10, 1, **kw), 8, "Wide ResNet block, dropout off"),
        "resnext": (lambda **kw: resnet.build_resnet(architecture=narrow_resnext, name="resnext", **kw), 8,
                    "ResNeXt bottleneck: grouped 3x3 convs (2 groups of 4)"),
        "densenet_bc": (lambda **kw: kc.CifarDenseNet(10, growth_rate=4, **kw), 8, "DenseNet-BC"),
        "densenet_bc_memory_efficient": (
            lambda **kw: kc.CifarDenseNet(10, growth_rate=4, memory_efficient=True, **kw), 8,
            "memory_efficient=True: keras.remat, BN statistics updated once; the plain row's weights file"),
        "imagenet_resnet_torchvision": (shallow_resnet(resnet.imagenet_resnet(18), "resnet_torchvision"), 32,
                                        "ImageNet stem (max-pool), torchvision layout, from a torchvision-format "
                                        ".safetensors checkpoint"),
        "imagenet_densenet": (lambda **kw: densenet.build_densenet(architecture=shallow_imagenet_densenet,
                                                                   name="densenet_imagenet", **kw), 32,
                              "keras.applications DenseNet: ImageNet stem, transitions"),
    }


#: The row whose weights reach every backend as a torchvision checkpoint instead of a Keras weights file.
TORCH_ROW = "imagenet_resnet_torchvision"
#: Rows built from another row's weights file and batch: the memory-efficient model through its `weights=` path.
TWIN_ROWS = {"densenet_bc_memory_efficient": "densenet_bc"}


def weights_file(directory, row):
    if row == TORCH_ROW:
        return os.path.join(directory, f"{row}.safetensors")
    return os.path.join(directory, f"{TWIN_ROWS.get(row, row)}.weights.h5")


def _batch(size, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (BATCH, size, size, 3)).astype("float32"), rng.integers(0, 10, (BATCH,))


def _build(row, directory):
    build, size, _ = rows()[row]
    return build(input_shape=(size, size, 3), classifier_activation=None, weights=weights_file(directory, row)), size


def _randomize(model, rng):
    """Random weights everywhere, BN affine parameters and moving statistics included, so that inference depends on
    every layer's placement and constants (fresh BN statistics would make inference-mode BN nearly the identity)."""
    weights = []
    for variable, value in zip(model.weights, model.get_weights()):
        path = getattr(variable, "path", variable.name)
        if "moving_variance" in path or "gamma" in path:
            weights.append(rng.uniform(0.5, 1.5, value.shape))
        elif "moving_mean" in path or "beta" in path or "bias" in path:
            weights.append(rng.normal(0, 0.2, value.shape))
        else:  # conv / dense kernels: He normal, fan in = everything but the last axis
            weights.append(rng.normal(0, np.sqrt(2.0 / np.prod(value.shape[:-1])), value.shape))
    model.set_weights([w.astype("float32") for w in weights])


def _torchvision_state(model):
    """``model``'s weights as a torchvision state dict (the inverse of torch_weights' mapping)."""
    from keras_convnets.models import torch_weights

    mapper = torch_weights.key_map(getattr(model, torch_weights.ARCHITECTURE_ATTRIBUTE))
    state = {}
    for layer in model.layers:
        values = layer.get_weights()
        if not values:
            continue
        prefix, kind = mapper(layer.name), type(layer).__name__
        if kind == "Conv2D":
            names, values = ["weight", "bias"], [values[0].transpose(3, 2, 0, 1)] + values[1:]
        elif kind == "Dense":
            names, values = ["weight", "bias"], [values[0].T, values[1]]
        else:  # BatchNormalization, PyTorch's eps (the torchvision-layout config's)
            names = ["weight", "bias", "running_mean", "running_var"]
        state.update({f"{prefix}.{n}": np.ascontiguousarray(v, dtype=np.float32) for n, v in zip(names, values)})
    return state


def kink_margin(model, x) -> float:
    """The training-mode forward pass's smallest distance to a kink, relative to the scale of its layer: ``|z| /
    rms(z)`` over every ReLU input, ``(largest - second largest) / rms`` over every max-pool window with a positive
    largest entry (a window of zeros, ReLU's, passes no gradient on)."""
    from keras_convnets.models.backend import keras

    relus = [layer for layer in model.layers if getattr(layer, "activation", None) is keras.activations.relu
             and isinstance(layer, keras.layers.Activation)]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)
             and layer.pool_size != (1, 1)]  # a 1x1 pool (a shortcut's subsampling) has no kink
    probe = keras.Model(model.input, [layer.input for layer in relus + pools])
    outputs = [np.asarray(value, np.float64) for value in probe(x, training=True)]
    margins = [np.abs(z).min() / np.sqrt(np.mean(z ** 2)) for z in outputs[:len(relus)]]
    for layer, z in zip(pools, outputs[len(relus):]):
        size, stride = layer.pool_size[0], layer.strides[0]
        windows = np.lib.stride_tricks.sliding_window_view(z, (size, size), axis=(1, 2))[:, ::stride, ::stride]
        windows = np.sort(windows.reshape(windows.shape[:4] + (-1,)), axis=-1)
        live = windows[..., -1] > 0
        margins.append((windows[..., -1] - windows[..., -2])[live].min() / np.sqrt(np.mean(z ** 2)))
    return float(min(margins))


def prepare(directory):
    """On TensorFlow: each row's random weights, saved as every backend will load them, and its batch seed (the first
    whose :func:`kink_margin` exceeds :data:`KINK_MARGIN`), in ``table.json``."""
    from safetensors.numpy import save_file

    seeds = {}
    for index, row in enumerate(rows()):
        if row in TWIN_ROWS:
            continue
        build, size, _ = rows()[row]
        model = build(input_shape=(size, size, 3), classifier_activation=None)
        _randomize(model, np.random.default_rng(index))
        if row == TORCH_ROW:
            save_file(_torchvision_state(model), weights_file(directory, row))
        else:
            model.save_weights(weights_file(directory, row))
        seeds[row] = next((1000 * index + attempt for attempt in range(ATTEMPTS)
                           if kink_margin(model, _batch(size, 1000 * index + attempt)[0]) > KINK_MARGIN), None)
        assert seeds[row] is not None, f"{row}: no batch of {ATTEMPTS} stays {KINK_MARGIN} away from every kink"
    seeds.update({row: seeds[twin] for row, twin in TWIN_ROWS.items()})
    with open(os.path.join(directory, "table.json"), "w") as f:
        json.dump(seeds, f)


def answers(directory, compiled=True):
    """This process's backend's answers, ``{row: (logits, loss, weights after the step, largest change, scale)}``.
    ``compiled=False`` (the TensorFlow reference) runs eagerly (tracing a graph per model costs more than its one
    step, and TensorFlow's compiled paths are the rest of the suite's) and measures ``scale``, the largest
    training-mode logit (without updating anything), which the loss's bound is relative to; NaN otherwise."""
    from keras_convnets.models.backend import keras

    with open(os.path.join(directory, "table.json")) as f:
        seeds = json.load(f)
    results = {}
    for row in rows():
        model, size = _build(row, directory)
        x, y = _batch(size, seeds[row])
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), run_eagerly=not compiled,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        logits = np.asarray(model.predict(x, batch_size=BATCH, verbose=0))
        scale = float("nan") if compiled else float(np.max(np.abs(np.asarray(model.stateless_call(
            model.trainable_variables, model.non_trainable_variables, x, training=True)[0]))))
        before = model.get_weights()
        loss = float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])
        after = [np.asarray(w) for w in model.get_weights()]
        step = max(float(np.max(np.abs(a - b))) for a, b in zip(after, before))
        results[row] = (logits, loss, after, step, scale)
    return results


def save(results, path):
    arrays = {}
    for row, (logits, loss, weights, step, scale) in results.items():
        arrays.update({f"{row}/logits": logits, f"{row}/loss": np.float64(loss), f"{row}/step": np.float64(step),
                       f"{row}/scale": np.float64(scale)})
        arrays.update({f"{row}/weight{i}": w for i, w in enumerate(weights)})
    np.savez(path, **arrays)


def load(path):
    with np.load(path) as data:
        table = {}
        for row in sorted({key.split("/")[0] for key in data.files}):
            count = sum(key.startswith(f"{row}/weight") for key in data.files)
            table[row] = (data[f"{row}/logits"], float(data[f"{row}/loss"]),
                          [data[f"{row}/weight{i}"] for i in range(count)], float(data[f"{row}/step"]),
                          float(data[f"{row}/scale"]))
        return table


def options(directory):
    """What the equality rows leave out, under ``fit`` / ``predict`` (compiled): the random options (a WRN with
    stochastic depth and dropout: two epochs that change the weights; stochastic depth's per-example draws),
    ``features=True`` through ``get_backbone``, and the one-line refusal of ``sync_bn``. A dict the test asserts on."""
    import keras_convnets as kc
    from keras_convnets.models.backend import keras

    x, y = _batch(8, 0)
    model = kc.WideResNet(10, 1, dropout=0.3, stochastic_depth=0.5, input_shape=(8, 8, 3))
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    history = model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    report = {"fit": {"losses": history.history["loss"],
                      "changed": any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))}}
    kept = np.asarray(kc.StochasticDepth(0.5, seed=3)(np.ones((2000, 2, 2, 1), "float32"), training=True))
    kept = kept.reshape(2000, -1)
    report["stochastic_depth"] = {"values": sorted(set(np.unique(kept).tolist())),
                                  "kept": float((kept[:, 0] > 0).mean()),
                                  "whole": bool(np.all(kept.min(axis=1) == kept.max(axis=1)))}
    backbone = kc.get_backbone("resnet20", input_shape=(8, 8, 3))
    report["features"] = {level: list(value.shape) for level, value in backbone.predict(x, verbose=0).items()}
    try:
        kc.ResNet20(sync_bn=True, input_shape=(8, 8, 3))
        report["sync_bn"] = None
    except ValueError as error:
        report["sync_bn"] = str(error)
    return report


if __name__ == "__main__":
    from keras_convnets.models.backend import BACKEND

    save(answers(sys.argv[1]), os.path.join(sys.argv[1], f"{BACKEND}.npz"))
    report = {"backend": BACKEND, "options": options(sys.argv[1]), "tensorflow_imported": "tensorflow" in sys.modules}
    print("REPORT" + json.dumps(report))
