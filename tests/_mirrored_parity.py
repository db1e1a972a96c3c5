"""Run as a script (by tests/test_distribute.py, in a fresh process: logical devices must be configured before
TensorFlow initializes). Trains a CIFAR ResNet-8 (the option-A ResNet of ResNet-20 with one block per stage: the same
layers, fewer of them) for 3 SGD steps on one device, then under MirroredStrategy over two logical CPU devices with
sync_bn and without it, all from the same initial weights on the same global batches, and prints one JSON line with,
for each mirrored run, the largest weight difference from the one-device run (BN moving statistics included; moving
variances also as a relative difference). The run without sync_bn shows that the comparison notices per-replica batch
statistics. A last pair of runs, one device and mirrored with sync_bn, adds the weights' EMA
(keras_convnets/training/ema.py): its shadow variables live beside the mirrored weights, and at the end both models
hold the same average.

The claim is "the same function": synchronized BN over two replicas computes the one-device batch statistics, and the
two-replica gradient is the sum of the halves. Both sides differ only in the order of floating-point sums, so the
comparison runs in float64 (``keras.backend.set_floatx``): in float32 the order-dependent rounding (2^-24 relative),
amplified by three SGD steps at lr 0.1 through 20 layers, reached 8e-3 on an Intel AMX CPU and 3e-2 on an AMD
AVX-512 one, which no CPU-independent bound separates from a real bug. See test_distribute.py for the bound.
"""

import json

import numpy as np
import tensorflow as tf

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)

from keras_convnets.models.backend import KERAS_3, keras  # noqa: E402
from keras_convnets.models.resnet import CifarResNet  # noqa: E402
from keras_convnets.runtime import distribute  # noqa: E402
from keras_convnets.training import ema  # noqa: E402

keras.backend.set_floatx("float64")
GLOBAL_BATCH, STEPS, SHAPE = 16, 3, (16, 16, 3)
rng = np.random.default_rng(0)
images = rng.normal(size=(GLOBAL_BATCH * STEPS,) + SHAPE)
labels = rng.integers(0, 10, GLOBAL_BATCH * STEPS)


def build(**kwargs):
    return CifarResNet(8, input_shape=SHAPE, classes=10, **kwargs)


def train(strategy, initial, sync_bn, callbacks=()):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = build(sync_bn=sync_bn, weight_decay=1e-4)
        if initial is not None:
            model.set_weights(initial)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy())
    initial = model.get_weights() if initial is None else initial
    # The dataset's batch is the global batch; MirroredStrategy splits it into equal per-replica halves.
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(GLOBAL_BATCH)
    model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=list(callbacks))
    return strategy.num_replicas_in_sync, initial, model.get_weights()


def differences(single, mirrored, names):
    diff = max(float(np.max(np.abs(a - b))) for a, b, n in zip(single, mirrored, names) if "moving_variance" not in n)
    variance_diff = max(float(np.max(np.abs(a - b) / np.abs(a))) for a, b, n in zip(single, mirrored, names)
                        if "moving_variance" in n)
    return {"max_diff": diff, "moving_variance_rel_diff": variance_diff}


# On one device the global batch statistics are the local ones, so the reference is the plain model on one device.
_, initial, single = train(distribute.get_strategy("default"), None, sync_bn=False)
names = [w.name for w in build().weights]
report = {"keras_3": KERAS_3, "dtype": str(single[0].dtype),
          "moved": max(float(np.max(np.abs(a - b))) for a, b in zip(initial, single))}
mirrored_strategy = distribute.get_strategy("mirrored")  # one for both runs: two would reuse collective keys
for key, sync_bn in (("sync_bn", True), ("no_sync_bn", False)):
    replicas, _, mirrored = train(mirrored_strategy, initial, sync_bn)
    report[key] = dict(differences(single, mirrored, names), replicas=replicas)
averages = [ema.callback(0.5), ema.callback(0.5)]
_, _, single_average = train(distribute.get_strategy("default"), initial, False, [averages[0]])
replicas, _, mirrored_average = train(mirrored_strategy, initial, True, [averages[1]])
report["ema"] = dict(differences(single_average, mirrored_average, names), replicas=replicas,
                     steps=[average.steps for average in averages],
                     from_raw=max(float(np.max(np.abs(a - b))) for a, b in zip(single, single_average)))
print(json.dumps(report))
