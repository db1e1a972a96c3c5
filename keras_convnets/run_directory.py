"""The run directory ``OUT`` of a training run, and its one owner: what it holds and where, how each file is read
and written, whether a run may start there, and one run per directory (the lock).

``OUT`` holds ``run.json`` (the run's arguments and ``status``: ``running``, ``complete`` or ``diverged``; a
different run is refused), ``history.json`` / ``history.csv`` (one row per epoch), ``curves.png``, ``logs/``
(TensorBoard), ``backup/`` (the per-epoch checkpoints, :mod:`keras_convnets.training.checkpoint`), ``saved_model/``
and, while a run is alive, ``.lock``. :class:`RunDirectory` is the only code that spells these names; JSON and CSV
are written under a temporary name and renamed into place, so a kill never leaves half a file.

The lock: ``OUT/.lock`` names the process that owns it (pid and host), written in full under a temporary name and
hard-linked into place, so it exists only complete and only one process can create it (``link`` fails when the name
exists). A lock whose owner is a process of this host that no longer exists is stale (the owner was killed) and is
taken over; a lock of another host cannot be checked from here, so it is refused with the file's path to delete by
hand.

Imports nothing of the package: training writes the directory through it, serving and the command line read it.
"""

import contextlib
import csv
import dataclasses
import json
import logging
import os
import shutil
import socket
import time
from typing import Any, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
CURVES_PNG = "curves.png"
BACKUP = "backup"
SAVED_MODEL = "saved_model"
LOGS = "logs"
LOCK_FILE = ".lock"


class RunMismatchError(ValueError):
    """The output directory holds a different run, or cannot hold one (one line)."""


class RunCompleteError(ValueError):
    """The output directory holds this very run, complete: training it again needs ``force``."""


class RunLockedError(ValueError):
    """Another live process is running into the same output directory."""


def write_json(path: str, obj) -> None:
    """Writes ``obj`` as JSON at ``path`` through a temporary file renamed into place."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """The run directory at ``path`` (absolute or relative, as given)."""

    path: str

    def _join(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def run_file(self) -> str:
        return self._join(RUN_FILE)

    @property
    def backup(self) -> str:
        return self._join(BACKUP)

    @property
    def saved_model(self) -> str:
        return self._join(SAVED_MODEL)

    @property
    def logs(self) -> str:
        return self._join(LOGS)

    @property
    def curves(self) -> str:
        return self._join(CURVES_PNG)

    # ---------------------------------------------------------------------------------------------- run.json --

    def record(self) -> Optional[Dict[str, Any]]:
        """``run.json`` as a dict, None when there is none; a :class:`RunMismatchError` when it is not a JSON object
        with ``arguments``."""
        if not os.path.exists(self.run_file):
            return None
        try:
            record = read_json(self.run_file)
        except (OSError, ValueError) as error:
            raise RunMismatchError(f"{self.run_file} cannot be read as JSON ({error}); choose another --out") from None
        if not isinstance(record, dict) or not isinstance(record.get("arguments", {}), dict):
            raise RunMismatchError(f"{self.run_file} is not a run record (a JSON object with 'arguments'); choose "
                                   "another --out")
        return record

    def write_record(self, record: Dict[str, Any]) -> None:
        write_json(self.run_file, record)

    def recorded_statistics(self, dataset: str) -> Optional[dict]:
        """The data statistics ``run.json`` recorded for ``dataset`` (a resumed run normalizes as it started), or
        None."""
        try:
            record = self.record()
        except RunMismatchError:
            return None  # check() says why
        recorded = (record or {}).get("data")
        if not isinstance(recorded, dict) or (record.get("arguments") or {}).get("dataset") not in (
                dataset, os.path.abspath(dataset)):
            return None
        return recorded.get("statistics")

    # ------------------------------------------------------------------------------------- may a run start --

    def check_writable(self) -> None:
        """A :class:`RunMismatchError` (one line) unless the directory is, or can be created as, one this process
        can write."""
        out = self.path
        if os.path.exists(out) and not os.path.isdir(out):
            raise RunMismatchError(f"output directory {out} is a file, not a directory; choose another --out")
        existing = out
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise RunMismatchError(f"output directory {out} cannot be created: {existing} is a file; choose another "
                                   "--out")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise RunMismatchError(f"output directory {out} is not writable ({existing}: permission denied or "
                                   "read-only); choose another --out")

    def check(self, arguments: Dict[str, Any], force: bool = False) -> None:
        """Refuses a directory that is not writable, holds another run (different ``run.json`` arguments, each
        difference named) or unrelated files, or holds this run complete (unless ``force``). A diverged run's
        directory is free."""
        self.check_writable()
        record = self.record()
        out = self.path
        if record is None:
            if os.path.isdir(out) and [name for name in os.listdir(out) if name != LOCK_FILE]:
                raise RunMismatchError(f"output directory {out} is not empty and holds no {RUN_FILE}; choose another "
                                       "--out")
            return
        recorded, wanted = record.get("arguments"), json.loads(json.dumps(arguments))
        if record.get("status") == "diverged":
            return
        if recorded != wanted:
            raise RunMismatchError(f"output directory {out} holds a different run "
                                   f"({_differences(recorded or {}, wanted)}); choose another --out or delete it")
        if record.get("status") == "complete" and not force:
            accuracy = record.get("test_accuracy")
            score = f" (test accuracy {accuracy:.4f})" if isinstance(accuracy, float) else ""
            raise RunCompleteError(f"the run in {out} is complete{score}; pass --force (force=True) to train it "
                                   "again, or choose another --out")

    def create(self) -> None:
        """Creates the directory (a :class:`RunMismatchError` in one line when it cannot be)."""
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as error:
            raise RunMismatchError(f"output directory {self.path} cannot be created ({error.strerror}); choose "
                                   "another --out") from None

    # ------------------------------------------------------------------------------------ a run's life --

    def start(self, arguments: Dict[str, Any], data: Dict[str, Any], force: bool = False) -> None:
        """Marks the run ``running`` after checking the directory again (under the lock: another process may have
        finished this run meanwhile). What a diverged or different run left (backup, history, curves) is cleared,
        so the new run starts from epoch 1."""
        self.check(arguments, force)
        record = self.record()
        if record is not None and (record.get("status") == "diverged" or record.get("arguments") != json.loads(
                json.dumps(arguments))):
            self.remove_backup()
            for name in (HISTORY_JSON, HISTORY_CSV, CURVES_PNG):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self._join(name))
        self.write_record({"status": "running", "arguments": arguments, "data": data})

    def diverged(self, arguments: Dict[str, Any], epoch: int, message: str) -> None:
        """Records a run whose loss became NaN at ``epoch`` (its backup goes: its weights belong to a learning rate
        that diverges)."""
        self.remove_backup()
        self.write_record({"status": "diverged", "arguments": arguments, "diverged_at_epoch": epoch,
                           "error": message})

    def complete(self, record: Dict[str, Any]) -> None:
        """Records the run ``complete`` (``record``: its fields besides the status), then deletes the backup: a run
        killed before this resumes with no epoch left to train."""
        self.write_record({"status": "complete", **record})
        self.remove_backup()

    def remove_backup(self) -> None:
        shutil.rmtree(self.backup, ignore_errors=True)

    def has_backup(self) -> bool:
        return os.path.isdir(self.backup) and any(not name.startswith(".") for name in os.listdir(self.backup))

    # ----------------------------------------------------------------------------------------- history --

    def history(self) -> List[Dict[str, Any]]:
        """The epochs' rows ``history.json`` holds (none yet: ``[]``)."""
        path = self._join(HISTORY_JSON)
        return read_json(path) if os.path.exists(path) else []

    def write_history(self, rows: List[Dict[str, Any]]) -> None:
        """``rows`` as ``history.json`` and ``history.csv``, each written whole and renamed into place."""
        write_json(self._join(HISTORY_JSON), rows)
        columns = list(dict.fromkeys(key for row in rows for key in row))
        tmp = self._join(HISTORY_CSV + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self._join(HISTORY_CSV))

    # -------------------------------------------------------------------------------------------- lock --

    @contextlib.contextmanager
    def locked(self):
        """The directory's lock for the duration of a ``with`` block (:func:`acquire`)."""
        path = acquire(self.path)
        try:
            yield path
        finally:
            release(path)


def _differences(recorded: dict, wanted: dict, prefix: str = "", shown: int = 3) -> str:
    """What differs between ``run.json``'s arguments and this run's, field by field (into nested records such as
    ``regularization``): ``"regularization.ema: 0.99 in run.json, 0.9 now"``; the first ``shown`` of them."""
    lines = []
    for key in sorted(set(recorded) | set(wanted)):
        old, new = recorded.get(key), wanted.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            lines.append(_differences(old, new, f"{prefix}{key}.", shown))
        else:
            lines.append(f"{prefix}{key}: {'absent' if key not in recorded else repr(old)} in {RUN_FILE}, "
                         f"{'absent' if key not in wanted else repr(new)} now")
    more = f"; and {len(lines) - shown} more" if len(lines) > shown else ""
    return "; ".join(lines[:shown]) + more


def run_of_saved_model(saved_model_dir: str) -> Optional[Tuple[str, Optional[Dict[str, Any]]]]:
    """``(path, record)`` of the ``run.json`` of the run that wrote the SavedModel at ``saved_model_dir`` (in the run
    directory around it, or inside it); ``record`` is None when that file is not JSON. None if there is no record."""
    for directory in (os.path.dirname(os.path.abspath(saved_model_dir)), saved_model_dir):
        path = os.path.join(directory, RUN_FILE)
        if os.path.isfile(path):
            try:
                return path, read_json(path)
            except (OSError, ValueError):
                return path, None
    return None


# ------------------------------------------------------------------------------------------------ the lock --

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _owner(path):
    try:
        with open(path) as f:
            owner = json.load(f)
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def acquire(out: str) -> str:
    """Takes ``out``'s lock for this process (taking over a stale one) and returns its path; a
    :class:`RunLockedError` naming the owner when a live process holds it."""
    path = os.path.join(out, LOCK_FILE)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    tmp = f"{path}.{me['pid']}.tmp"
    with open(tmp, "w") as f:
        json.dump(me, f)
    try:
        for _ in range(2):
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                owner = _owner(path)
                pid, host = owner.get("pid"), owner.get("host")
                if host == me["host"] and isinstance(pid, int) and not _alive(pid):
                    logger.info("Removing the stale lock of process %s (no longer running): %s", pid, path)
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path)
                    continue
                who = f"process {pid} on {host}" if pid else "another process"
                raise RunLockedError(f"{out} is in use by {who} (lock {path}); wait for it, choose another --out, or "
                                     "delete the lock if that run is gone") from None
        raise RunLockedError(f"{out}: could not take the lock {path}; retry")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def release(path: str) -> None:
    """Removes a lock taken by :func:`acquire` if this process still owns it."""
    if _owner(path).get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
