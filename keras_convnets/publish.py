"""Publishing outputs so that nothing is lost: every file or folder the package writes for a user (a SavedModel, an
ONNX / LiteRT / OpenVINO file and its class names, a Keras weights file) goes through :func:`publishing`.

The rule: **never delete or overwrite what this package did not write, and never leave a half-written file where a
good one was.**

- Before anything is written, each target is checked (:func:`check_replaceable`): a path that exists must be an
  output of the same :class:`Kind` (a SavedModel folder holding only a SavedModel, an ONNX file we wrote, ...) or it
  is refused with an :class:`OutputExistsError` naming what is there.
- The new outputs are written into a temporary folder beside the targets (``.NAME.tmp-PID-XXXX``), which the caller
  checks (reloads, compares) before leaving the ``with`` block; an exception there removes it and the targets are
  untouched.
- The swap: the old outputs are set aside in ``.NAME.old-PID-XXXX`` (a file hard-linked there, so it stays in place
  until ``os.replace`` swaps the new one in atomically; a folder renamed, since a folder cannot be replaced by a
  rename), with a manifest of what existed; the new ones are renamed in; a ``committed`` mark is written; the aside is
  removed.
- A publish killed at any step is recovered by the next one into the same place (:func:`recover`): an aside without
  the mark is rolled back (the old outputs put back, the half-published new ones removed), one with it removed, and
  the temporary folders of processes that no longer run are deleted.

Imports only the run directory's layout (:mod:`keras_convnets.run_directory`, to name a run directory it refuses):
every layer that writes uses it.
"""

import contextlib
import dataclasses
import errno
import glob
import json
import logging
import os
import re
import shutil
import tempfile
from typing import Callable, Dict, Iterator, Sequence

from keras_convnets.run_directory import RUN_FILE

logger = logging.getLogger(__name__)

_MANIFEST = "manifest.json"
_COMMITTED = "committed"
#: The temporary and aside folders of one target: ``.NAME.tmp-PID-XXXX``, ``.NAME.old-PID-XXXX``.
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<what>tmp|old)-(?:(?P<pid>\d+)-)?[^/]*$")


class OutputExistsError(ValueError):
    """The output path exists and is not an output of the same kind that this package wrote (one line)."""


@dataclasses.dataclass(frozen=True)
class Kind:
    """What an output is, for :func:`check_replaceable`: ``name`` as a message says it ("a SavedModel"),
    ``directory`` or a file, and ``recognizes(path)``: whether an existing path is such an output written by this
    package (a folder: also that it holds nothing else)."""

    name: str
    recognizes: Callable[[str], bool]
    directory: bool = False


def _contains(marker: bytes, limit: int = -1) -> Callable[[str], bool]:
    """Whether a file's first ``limit`` bytes (-1: all) contain ``marker``."""
    def recognizes(path: str) -> bool:
        with open(path, "rb") as f:
            return marker in f.read(limit)
    return recognizes


#: What a SavedModel folder holds; ours also holds ``assets/labels.txt``.
SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "variables", "assets", "fingerprint.pb"})


def _is_our_saved_model(path: str) -> bool:
    entries = set(os.listdir(path))
    return (entries <= SAVED_MODEL_ENTRIES and "saved_model.pb" in entries
            and os.path.isfile(os.path.join(path, "assets", "labels.txt")))


def _is_tflite(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8)[4:8] == b"TFL3"  # the FlatBuffer file identifier of LiteRT models


#: The HDF5 attribute that marks a weights file as written by this package (:func:`mark_hdf5`).
HDF5_MARK = "keras_convnets_writer"


def _is_marked_hdf5(path: str) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return HDF5_MARK in f.attrs
    except OSError:  # not an HDF5 file, or a damaged one
        return False


def mark_hdf5(path: str) -> None:
    """Marks the HDF5 file at ``path`` as written by this package (a root attribute), so a later run may replace
    it."""
    import h5py

    with h5py.File(path, "a") as f:
        f.attrs[HDF5_MARK] = "keras-convnets"


def is_labels_file(path: str) -> bool:
    """A class-names file as :func:`write_labels` writes it: UTF-8 text ending in a newline, at most 1 MB."""
    if os.path.getsize(path) > 1 << 20:
        return False
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8").endswith("\n") and b"\0" not in data
    except UnicodeDecodeError:
        return False


#: Our outputs. A SavedModel folder holds only a SavedModel, ours with its ``assets/labels.txt``; a weights file
#: carries :func:`mark_hdf5`'s mark, an ONNX file our producer name, an OpenVINO model the class names we record in
#: it (``keras_convnets`` in its XML); a LiteRT file is recognised by its FlatBuffer identifier only.
SAVED_MODEL = Kind("a SavedModel written by keras-convnets", _is_our_saved_model, directory=True)
WEIGHTS = Kind("a Keras weights file written by keras-convnets", _is_marked_hdf5)
ONNX = Kind("an ONNX file written by keras-convnets", _contains(b"keras-convnets", 4096))  # producer_name: field 2
LITERT = Kind("a LiteRT (.tflite) file", _is_tflite)
OPENVINO = Kind("an OpenVINO model written by keras-convnets", _contains(b"keras_convnets"))


def write_labels(path: str, names: Sequence[str]) -> str:
    """Writes the class names ``names``, one per line (UTF-8), at ``path``: the one writer of every labels file (a
    SavedModel's ``assets/labels.txt``, ``NAME.labels.txt`` beside another format). Returns ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in names))
    return path


def _listing(path: str, limit: int = 4) -> str:
    names = sorted(os.listdir(path))
    shown = ", ".join(names[:limit]) + (f", ... ({len(names)} entries)" if len(names) > limit else "")
    return shown or "nothing"


def check_replaceable(path: str, kind: Kind, flag: str = "--out") -> None:
    """An :class:`OutputExistsError` (one line) unless ``path`` is absent, or is ``kind`` written by this package
    (a folder: or empty). Nothing is written."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path):
        raise OutputExistsError(f"{path} is a symbolic link; choose another {flag} (nothing was written)")
    if kind.directory:
        if not os.path.isdir(path):
            raise OutputExistsError(f"{path} exists and is a file, not {kind.name}; choose another {flag} (nothing "
                                    "was written)")
        if not os.listdir(path) or kind.recognizes(path):
            return
        what = f"a training run directory (it holds {RUN_FILE})" if os.path.isfile(os.path.join(path, RUN_FILE)) \
            else f"not {kind.name} (it holds {_listing(path)})"
        raise OutputExistsError(f"{path} exists and is {what}: it would be replaced; choose another {flag} "
                                "(nothing was written)")
    if os.path.isdir(path):
        raise OutputExistsError(f"{path} exists and is a directory, not {kind.name}; choose another {flag} (nothing "
                                "was written)")
    try:
        ours = kind.recognizes(path)
    except OSError:
        ours = False
    if not ours:
        raise OutputExistsError(f"{path} exists and is not {kind.name}: it would be overwritten; choose another "
                                f"{flag} or remove it first (nothing was written)")


def _another_live_process(pid: int) -> bool:
    """Whether ``pid`` is a running process of this host other than this one (whose own leftovers are its to
    recover)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(target: str):
    """``(path, kind, pid)`` of the temporary (``tmp``) and aside (``old``) folders of publishes into ``target``."""
    parent, name = os.path.split(os.path.abspath(target))
    for path in glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(name)}.*-*")):
        match = _LEFTOVER.match(os.path.basename(path))
        if match and match["name"] == name and os.path.isdir(path):
            yield path, match["what"], int(match["pid"]) if match["pid"] else None


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def _roll_back(aside: str, parent: str) -> None:
    """Puts the outputs a killed publish set aside back and removes the new ones it had moved in (nothing when it
    was killed before recording what it would set aside)."""
    try:
        with open(os.path.join(aside, _MANIFEST)) as f:
            existed = json.load(f)
    except (OSError, ValueError):
        return
    for name, had in existed.items():
        target, old = os.path.join(parent, name), os.path.join(aside, name)
        if had and os.path.lexists(old):
            if os.path.isdir(old):
                if os.path.lexists(target):
                    os.rename(target, os.path.join(aside, f"{name}.new"))
                os.rename(old, target)
            else:
                os.replace(old, target)
        elif not had and os.path.lexists(target):
            _remove(target)
    logger.warning("Restored %s left by an interrupted publish", ", ".join(os.path.join(parent, n) for n in existed))


def _recover_legacy_aside(aside: str, target: str) -> None:
    """An aside of the earlier export code: ``.NAME.old-XXXX/previous``, put back when ``target`` is missing."""
    previous = os.path.join(aside, "previous")
    if not os.path.lexists(target) and os.path.isdir(previous):
        os.rename(previous, target)
        logger.warning("Restored %s left aside by an interrupted export", target)


def recover(target: str) -> None:
    """Finishes what killed publishes into ``target`` left: rolls back an unfinished swap, removes a finished one's
    aside and the temporary folders of processes that no longer run (this host's). Every publish calls it first."""
    target = os.path.abspath(target)
    parent = os.path.dirname(target)
    for path, what, pid in sorted(_leftovers(target)):
        if pid is not None and _another_live_process(pid):
            continue  # another live publish's
        if what == "old":
            if os.path.isfile(os.path.join(path, _MANIFEST)) and not os.path.exists(os.path.join(path, _COMMITTED)):
                _roll_back(path, parent)
            elif not os.path.isfile(os.path.join(path, _MANIFEST)):
                _recover_legacy_aside(path, target)
        shutil.rmtree(path, ignore_errors=True)


def _mkdtemp(target: str, what: str) -> str:
    parent, name = os.path.split(target)
    return tempfile.mkdtemp(prefix=f".{name}.{what}-{os.getpid()}-", dir=parent)


def _set_aside(targets: Sequence[str], aside: str) -> None:
    """Records which targets exist, then keeps a way back to each: a file hard-linked (copied where links are not
    possible) into ``aside``, a folder renamed into it."""
    existed = {os.path.basename(t): os.path.lexists(t) for t in targets}
    with open(os.path.join(aside, _MANIFEST), "w") as f:
        json.dump(existed, f)
    for target in targets:
        if not os.path.lexists(target):
            continue
        kept = os.path.join(aside, os.path.basename(target))
        if os.path.isdir(target):
            os.rename(target, kept)
            continue
        try:
            os.link(target, kept)
        except OSError:
            shutil.copy2(target, kept)


def _swap_in(staged: Dict[str, str], first: str) -> None:
    """Moves every staged output over its target, the old ones set aside first (module docstring's swap)."""
    missing = [path for path in staged.values() if not os.path.lexists(path)]
    if missing:
        raise FileNotFoundError(errno.ENOENT, "a staged output was not written", missing[0])
    aside = _mkdtemp(first, "old")
    try:
        _set_aside(list(staged), aside)
        for target, path in staged.items():
            os.replace(path, target)
        with open(os.path.join(aside, _COMMITTED), "w"):
            pass
    except Exception:  # e.g. a full disk: put the old unit back now (a kill is recovered by the next publish)
        _roll_back(aside, os.path.dirname(first))
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def publishing(targets: Dict[str, Kind], flag: str = "--out") -> Iterator[Dict[str, str]]:
    """Stages the outputs ``targets`` (path -> :class:`Kind`, all in one folder, the main output first) and, when the
    ``with`` block ends without an exception, swaps them in as one unit; yields ``{target: staged path}`` for the
    block to write to and check. Each target is checked first (:func:`check_replaceable`, with ``flag`` in the
    message); the folder is created if missing; killed publishes into the main target are recovered first."""
    paths = [os.path.abspath(os.fspath(t)) for t in targets]
    parents = {os.path.dirname(p) for p in paths}
    if len(parents) != 1:
        raise ValueError(f"a published unit lives in one folder; got {sorted(parents)}")
    (parent,) = parents
    for path, kind in zip(paths, targets.values()):
        check_replaceable(path, kind, flag)
    os.makedirs(parent, exist_ok=True)
    recover(paths[0])
    tmp = _mkdtemp(paths[0], "tmp")
    try:
        staged = {path: os.path.join(tmp, os.path.basename(path)) for path in paths}
        yield staged
        for path, kind in zip(paths, targets.values()):  # again: the folder may have changed meanwhile
            check_replaceable(path, kind, flag)
        _swap_in(staged, paths[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def size_of(paths: Sequence[str]) -> int:
    """Bytes of the files and folders at ``paths``."""
    total = 0
    for path in paths:
        if os.path.isdir(path):
            total += sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
        elif os.path.exists(path):
            total += os.path.getsize(path)
    return total
