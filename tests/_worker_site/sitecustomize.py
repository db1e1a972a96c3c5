"""Loaded by the multi-worker test cluster's processes (tests/_multiworker.py puts this folder on PYTHONPATH, so a
re-executed command loads it too): when ``$KERAS_CONVNETS_DUMP_WEIGHTS`` names a folder, every worker saves its final
weights there as ``TASK.npz`` (``worker-0``, ``worker-1``) as it exports, for the tests to compare. A test hook kept
out of the library."""

import os

if os.environ.get("KERAS_CONVNETS_DUMP_WEIGHTS"):
    from keras_convnets.runtime import distribute
    from keras_convnets.serving import saved_model

    _export = saved_model.export_saved_model

    def _export_and_dump(model, *args, **kwargs):
        import numpy as np

        folder = os.environ["KERAS_CONVNETS_DUMP_WEIGHTS"]
        os.makedirs(folder, exist_ok=True)
        np.savez(os.path.join(folder, f"{distribute.task_name()}.npz"), *[np.asarray(w) for w in model.get_weights()])
        return _export(model, *args, **kwargs)

    saved_model.export_saved_model = _export_and_dump
