"""The per-epoch backup a killed run resumes from, written so that a crash at any moment leaves a loadable one.

Keras 3's ``BackupAndRestore`` overwrites ``backup/latest.weights.h5`` in place: a kill or a full disk during that
write leaves a truncated file, and every later run fails to load it. :func:`backup` is a callback that writes each
epoch's weights and metadata into a temporary directory beside the others and renames it to ``epoch-NNNNN`` only when
both are complete; it keeps the previous epoch's directory too. :func:`restore` runs *before* ``fit``: it loads the
newest checkpoint that loads and returns its epoch, so the run's input pipeline can start at that epoch
(:func:`keras_convnets.data.pipelines.train_dataset`) and a resumed run sees the batches the uninterrupted one
saw. A checkpoint is one unit: every part (metadata, each extra state, the weights file) is read and checked before
any is loaded, and a weights file that fails while loading puts the model's weights and optimizer state back as they
were; a damaged checkpoint costs one epoch (the previous one is loaded), never a mixture. Temporary directories of a
killed writer are removed by :func:`restore`. The backup is deleted by the caller (once the export has landed), not at
the end of ``fit``.

Under tf-keras (multi-worker training) Keras' own callback is used: it writes TensorFlow checkpoints, whose files
are written under temporary names and committed by an atomic rename of the ``checkpoint`` state file, and it restores
itself at the start of ``fit`` (there the input pipeline starts at epoch 0's order: its data order after a resumption
is not the uninterrupted run's).

``extras``: Keras callbacks with ``save_state(directory)``, ``read_state(directory)`` (the state, checked, nothing
changed) and ``apply_state(state)`` (the weights' EMA, :mod:`keras_convnets.training.ema`), saved into the same
checkpoint directory before its rename and restored with its weights. Keras' own callback under tf-keras has no place
for them: there they restart from the restored weights.
"""

import glob
import json
import logging
import math
import os
import shutil
import tempfile

logger = logging.getLogger(__name__)

PREFIX = "epoch-"
WEIGHTS = "weights.weights.h5"
METADATA = "training_metadata.json"
KEEP = 2


def _complete_checkpoints(backup_dir):
    """``(epoch, directory)`` of the complete checkpoints in ``backup_dir``, newest first."""
    found = []
    for directory in glob.glob(os.path.join(backup_dir, f"{PREFIX}*")):
        suffix = os.path.basename(directory)[len(PREFIX):]
        if suffix.isdigit() and os.path.isfile(os.path.join(directory, METADATA)):
            found.append((int(suffix), directory))
    return sorted(found, reverse=True)


def backup(backup_dir, extras=()):
    """The callback that backs up ``model.fit`` every epoch into ``backup_dir`` with the ``extras``' state (module
    docstring); under tf-keras Keras' own ``BackupAndRestore``, which also restores."""
    from keras_convnets.models.backend import KERAS_3, keras

    if not KERAS_3:
        return keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False)
    return _atomic_class()(backup_dir, extras)


def _remove_temporaries(backup_dir):
    """Removes the temporary directories a killed writer left in ``backup_dir``."""
    for stale in glob.glob(os.path.join(backup_dir, ".tmp-*")):
        shutil.rmtree(stale, ignore_errors=True)


def _state_variables(model) -> list:
    """What loading a checkpoint assigns: the model's variables and its optimizer's."""
    optimizer = getattr(model, "optimizer", None)
    return list(model.variables) + (list(optimizer.variables) if optimizer is not None else [])


def _read_whole(directory, model, extras):
    """``(epoch, extras' states)`` of the checkpoint in ``directory``, every part read and checked, nothing
    loaded: the metadata, each extra's state, and every tensor of the weights file (a truncated file fails here)."""
    import h5py

    with open(os.path.join(directory, METADATA)) as f:
        epoch = int(json.load(f)["epoch"])
    for extra in extras:
        extra.set_model(model)
    states = [extra.read_state(directory) for extra in extras]
    with h5py.File(os.path.join(directory, WEIGHTS), "r") as f:
        f.visititems(_read_tensor)
    return epoch, states


def _read_tensor(name, item):
    """Reads an HDF5 dataset whole (``visititems``' callback): raises if its data is cut short."""
    import h5py

    if isinstance(item, h5py.Dataset):
        item[()]  # noqa: B018 (read for the error it raises on a damaged file)


def _load(model, directory, extras, states):
    """Loads the checked checkpoint in ``directory``; if loading the weights fails midway, the model's and the
    optimizer's variables are put back as they were before it raises."""
    variables = _state_variables(model)
    before = [variable.numpy() for variable in variables]
    try:
        model.load_weights(os.path.join(directory, WEIGHTS))
    except BaseException:
        for variable, value in zip(variables, before):
            variable.assign(value)
        raise
    for extra, state in zip(extras, states):
        extra.apply_state(state)


def restore(model, backup_dir, extras=()) -> int:
    """Loads the newest complete checkpoint of ``backup_dir`` that loads whole (weights with the optimizer's
    state, then the ``extras``' states) into the compiled ``model`` and returns the number of finished epochs it
    records, 0 when there is none (the model then keeps its initial weights). Each one that does not load is
    reported (logging) and left for the previous one. Removes the temporaries of a killed writer first."""
    _remove_temporaries(backup_dir)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    for _, directory in _complete_checkpoints(backup_dir):
        try:
            epoch, states = _read_whole(directory, model, extras)
            _load(model, directory, extras, states)
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("Checkpoint %s cannot be loaded (%s); trying the previous one", directory,
                           " ".join(str(error).split())[:120])
            continue
        return epoch
    return 0


def _write_checkpoint(model, backup_dir, extras, epoch):
    """Writes ``model``'s weights, the ``extras``' state and ``epoch`` into a temporary directory of ``backup_dir``
    and renames it to the epoch's checkpoint; the older checkpoints beyond :data:`KEEP` go."""
    os.makedirs(backup_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=backup_dir)
    try:
        model.save_weights(os.path.join(tmp, WEIGHTS))
        for extra in extras:
            extra.save_state(tmp)
        with open(os.path.join(tmp, METADATA), "w") as f:
            json.dump({"epoch": epoch}, f)
            f.flush()
            os.fsync(f.fileno())
        target = os.path.join(backup_dir, f"{PREFIX}{epoch:05d}")
        if os.path.exists(target):  # the same epoch again (a resumed run): replace it
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in _complete_checkpoints(backup_dir)[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


def _atomic_class():
    from keras_convnets.models.backend import keras

    class AtomicBackup(keras.callbacks.Callback):
        """Writes each finished epoch's checkpoint atomically, two deep (module docstring); :func:`restore` reads
        them. An epoch whose loss is not finite is not saved."""

        def __init__(self, backup_dir, extras=()):
            super().__init__()
            self.backup_dir = backup_dir
            self.extras = tuple(extras)

        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                return
            self.save(epoch + 1)

        def save(self, epoch):
            """Writes the checkpoint of ``epoch`` finished epochs; the older ones beyond :data:`KEEP` go."""
            _write_checkpoint(self.model, self.backup_dir, self.extras, epoch)

    return AtomicBackup
