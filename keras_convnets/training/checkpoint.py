"""The per-epoch backup a killed run resumes from, written so that a crash at any moment leaves a loadable one.

Keras 3's ``BackupAndRestore`` overwrites ``backup/latest.weights.h5`` in place: a kill or a full disk during that
write leaves a truncated file, and every later run fails to load it. :class:`AtomicBackupAndRestore` writes each
epoch's weights and metadata into a temporary directory beside the others and renames it to ``epoch-NNNNN`` only when
both are complete; it keeps the previous epoch's directory too, and on restart loads the newest one that loads, so a
checkpoint that is damaged anyway (truncated afterwards, bad disk) costs one epoch, not the run. Temporary
directories of a killed writer are removed on the next start. The backup is deleted by the caller (once the export
has landed), not at the end of ``fit``.

Under tf-keras (multi-worker training) Keras' own callback is used: it writes TensorFlow checkpoints, whose files
are written under temporary names and committed by an atomic rename of the ``checkpoint`` state file.

``extras``: objects with ``save_state(directory)`` / ``load_state(directory)`` (the weights' EMA,
:mod:`keras_convnets.training.ema`) saved into the same checkpoint directory before its rename and restored with its
weights (a checkpoint whose extra state cannot be loaded counts as damaged). Keras' own callback under tf-keras has
no place for them: there they restart from the restored weights.
"""

import glob
import json
import math
import os
import shutil
import tempfile

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


def backup_and_restore(backup_dir, extras=()):
    """The callback that backs up ``model.fit`` every epoch into ``backup_dir`` and restores from it, with the
    ``extras``' state (module docstring)."""
    from keras_convnets.models.backend import KERAS_3, keras

    if not KERAS_3:
        return keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False)
    return _atomic_class()(backup_dir, extras)


def _remove_temporaries(backup_dir):
    """Removes the temporary directories a killed writer left in ``backup_dir``."""
    for stale in glob.glob(os.path.join(backup_dir, ".tmp-*")):
        shutil.rmtree(stale, ignore_errors=True)


def _restore_newest(model, backup_dir, extras):
    """Loads the newest complete checkpoint of ``backup_dir`` that loads (weights, then the ``extras``' state) into
    ``model`` and returns the number of finished epochs it records, or None when none loads. Each one that does not
    load is reported on stdout."""
    for _, directory in _complete_checkpoints(backup_dir):
        try:
            with open(os.path.join(directory, METADATA)) as f:
                recorded = json.load(f)["epoch"]
            model.load_weights(os.path.join(directory, WEIGHTS))
            for extra in extras:
                extra.load_state(directory)
        except (OSError, ValueError, KeyError) as error:
            print(f"Checkpoint {directory} cannot be loaded ({' '.join(str(error).split())[:120]}); "
                  "trying the previous one", flush=True)
            continue
        return int(recorded)
    return None


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

    class AtomicBackupAndRestore(keras.callbacks.Callback):
        """Keras 3 ``BackupAndRestore`` semantics (resume after the last finished epoch) with atomic, two-deep
        checkpoints; see the module docstring. An epoch whose loss is not finite is not saved."""

        def __init__(self, backup_dir, extras=()):
            super().__init__()
            self.backup_dir = backup_dir
            self.extras = tuple(extras)

        def on_train_begin(self, logs=None):
            _remove_temporaries(self.backup_dir)
            if not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            epoch = _restore_newest(self.model, self.backup_dir, self.extras)
            if epoch is not None:
                self.model._initial_epoch = epoch  # pylint: disable=protected-access

        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                return
            self.save(epoch + 1)

        def save(self, epoch):
            """Writes the checkpoint of ``epoch`` finished epochs; the older ones beyond :data:`KEEP` go."""
            _write_checkpoint(self.model, self.backup_dir, self.extras, epoch)

    return AtomicBackupAndRestore
