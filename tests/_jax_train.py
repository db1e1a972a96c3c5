"""What tests/test_train_jax.py runs in its ``KERAS_BACKEND=jax`` subprocesses (the test process is TensorFlow's).

``python tests/_jax_train.py train OUT [--kill-after-epoch-1]``: ``keras-convnets train resnet20`` for 2 epochs of 2
steps of 16 images per device into ``OUT`` (the evaluation cut to 2 batches); with the flag, the process dies as a
kill would (``os._exit``, no clean-up) as epoch 2 begins, after epoch 1's checkpoint is written.

``python tests/_jax_train.py data-parallel OUT``: one step of resnet20 (seed 0) twice in this process, on one device
(batch 32) and with ``--strategy data-parallel`` over the two host devices of
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (16 per device: the same global batch); the export is replaced
by a record of the weights. Prints ``RESULT`` and a JSON object: the largest difference between the two runs' weights
over the largest change of any weight in the step, and each run's replicas.
"""

import json
import os
import sys

import numpy as np

from keras_convnets.data import pipelines

TRAIN = ["train", "resnet20", "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "16"]


def _short_evaluation():
    evaluation = pipelines.eval_dataset
    pipelines.eval_dataset = lambda *args, **kwargs: evaluation(*args, **kwargs).take(2)


def train(out, kill):
    from keras_convnets import cli
    from keras_convnets.training import callbacks

    if kill:
        guard = callbacks.divergence_guard

        def killing_guard():
            class KilledAsEpoch2Begins(type(guard())):
                def on_epoch_begin(self, epoch, logs=None):
                    if epoch == 1:
                        sys.stdout.flush()
                        os._exit(9)
                    super().on_epoch_begin(epoch, logs)
            return KilledAsEpoch2Begins()

        callbacks.divergence_guard = killing_guard
    return cli.main([*TRAIN, "--out", out])


def data_parallel(out):
    import keras_convnets as kc
    from keras_convnets.serving import saved_model
    from keras_convnets.training import checkpoint

    seen = {}
    restore = checkpoint.restore

    def restore_and_record(model, *args, **kwargs):
        epoch = restore(model, *args, **kwargs)
        seen["initial"] = [np.array(w) for w in model.get_weights()]
        return epoch

    def record_instead_of_export(model, path, *args, **kwargs):
        seen["trained"] = [np.array(w) for w in model.get_weights()]
        return os.fspath(path)

    checkpoint.restore = restore_and_record
    saved_model.export_saved_model = record_instead_of_export
    runs = {}
    for name, strategy, batch in (("one", "default", 32), ("two", "data-parallel", 16)):
        kc.train("resnet20", "cifar10", epochs=1, steps_per_epoch=1, batch_size=batch, strategy=strategy,
                 out=os.path.join(out, name), verbose=0)
        runs[name] = dict(seen)
    one, two = runs["one"], runs["two"]
    assert all(np.array_equal(a, b) for a, b in zip(one["initial"], two["initial"])), "the same initial weights"
    step = max(float(np.max(np.abs(after - before))) for after, before in zip(one["trained"], one["initial"]))
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(one["trained"], two["trained"]))
    print("RESULT" + json.dumps({"relative": difference / step, "difference": difference, "step": step}))
    return 0


def main(argv):
    _short_evaluation()
    if argv[0] == "train":
        return train(argv[1], "--kill-after-epoch-1" in argv[2:])
    return data_parallel(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
