"""A folder of class sub-folders as a dataset: ``PATH/CLASS/IMAGE`` (``keras.utils.image_dataset_from_directory``'s
layout), scanned and checked in Python once, before any tf.data work.

Conventions (what we chose):

- **Splits.** If ``PATH``'s sub-folders are ``train`` plus ``test`` (or ``validation``, or ``val``), each of them a
  folder of class folders, those are the splits (evaluation: ``test``, else ``validation``, else ``val``). Otherwise
  ``PATH`` itself holds the classes and a seeded, per-class (stratified) fraction of each class is held out for
  evaluation; the seed is the split's own (``split_seed``), not the training seed, so runs with different training
  seeds evaluate on the same images.
- **Classes**: the sub-folder names, sorted; label ``i`` is ``class_names[i]``. Files are found recursively under a
  class folder (as Keras does), in sorted order.
- **Files**: ``.jpg .jpeg .png .bmp .gif`` (any case); other files (``.DS_Store``, notes) are ignored and counted.
  Each image is checked once with the decoder the pipeline uses (``tf.io.decode_image``; a JPEG at 1/8 scale, which
  still reads every block), so a training run never dies mid-epoch on a bad file.
- **Unreadable files are skipped and reported by name** (:attr:`FolderScan.report`), not refused: a photo folder
  commonly holds a stray truncated download, and refusing would make the user hunt it down by hand for no gain;
  the run's first lines name every skipped file. A class left with no readable image is an error, as is a folder
  with fewer than two classes.
"""

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_convnets import checks

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SPLIT_FOLDERS = ("train", "test", "validation", "val")
#: First bytes of each supported format.
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP"}


class ImageFolderError(ValueError):
    """The path is not a usable folder of class sub-folders."""


@dataclasses.dataclass(frozen=True)
class FolderScan:
    """The checked images of one folder of class folders: ``files[i]`` has label ``labels[i]``."""

    root: str
    class_names: tuple[str, ...]
    files: tuple[str, ...]
    labels: tuple[int, ...]
    skipped: tuple[tuple[str, str], ...]  # (path relative to root, reason)
    ignored: int                          # files that are not images by their extension
    formats: frozenset = frozenset()      # the formats of the kept files ("JPEG", "PNG", "GIF", "BMP")

    @property
    def report(self) -> str:
        """One line naming the skipped files (empty when none was)."""
        if not self.skipped:
            return ""
        shown = ", ".join(f"{name} ({reason})" for name, reason in self.skipped[:10])
        more = f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
        return (f"{self.root}: skipped {len(self.skipped)} unreadable image file(s) of "
                f"{len(self.files) + len(self.skipped)}: {shown}{more}")


def _subfolders(path: str) -> list[str]:
    return sorted(entry.name for entry in os.scandir(path) if entry.is_dir() and not entry.name.startswith("."))


def _image_files(folder: str) -> tuple[list[str], int]:
    """The image files under ``folder`` (recursively, sorted) and how many other files there are."""
    images, ignored = [], 0
    for directory, dirs, names in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                images.append(os.path.join(directory, name))
            else:
                ignored += 1
    return images, ignored


def image_format(path: str) -> tuple[str | None, str | None]:
    """``(format, None)`` if ``path`` decodes as the pipeline will decode it (format: JPEG, PNG, GIF or BMP), else
    ``(None, the reason in a few words)``."""
    import tensorflow as tf

    try:
        with open(path, "rb") as f:
            contents = f.read()
    except OSError as error:
        return None, f"cannot be read: {error.strerror}"
    kind = next((name for signature, name in _SIGNATURES.items() if contents.startswith(signature)), None)
    if kind is None:
        return None, "not a JPEG, PNG, GIF or BMP file" if contents else "empty file"
    try:
        if kind == "JPEG":  # DCT-domain 1/8 scaling: every block is read, a fraction of the work
            tf.io.decode_jpeg(contents, channels=3, ratio=8)
        else:
            tf.io.decode_image(contents, channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError):
        return None, f"corrupt or truncated {kind}"
    return kind, None


def scan_classes(root: str, *, threads: int | None = None, class_names: tuple[str, ...] | None = None) -> FolderScan:
    """Scans and checks ``root/CLASS/...``. ``class_names``: the classes a test folder must use (its training
    folder's); it may lack some of them but not add any. Raises :class:`ImageFolderError` with a one-line reason."""
    found = _subfolders(root)
    if class_names is None:
        if not found:
            raise ImageFolderError(f"{root} has no class sub-folders: expected {root}/CLASS_NAME/IMAGE.jpg with one "
                                   "sub-folder per class")
        if len(found) < 2:
            raise ImageFolderError(f"{root} holds one class ({found[0]!r}); classification needs at least 2 class "
                                   "sub-folders")
        class_names = tuple(found)
    else:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise ImageFolderError(f"{root} has classes the training folder lacks: {', '.join(unknown)}")
    files, labels, ignored = [], [], 0
    for label, name in enumerate(class_names):
        if name not in found:
            continue
        images, others = _image_files(os.path.join(root, name))
        files += images
        labels += [label] * len(images)
        ignored += others
    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:  # TF's decoders release the GIL
        checks = list(pool.map(image_format, files))
    reasons = [reason for _, reason in checks]
    skipped = tuple((os.path.relpath(f, root), r) for f, r in zip(files, reasons) if r is not None)
    kept = [(f, label) for f, label, r in zip(files, labels, reasons) if r is None]
    counts = np.bincount([label for _, label in kept], minlength=len(class_names))
    empty = [name for name, count in zip(class_names, counts) if count == 0 and name in found]
    if empty:
        raise ImageFolderError(f"class folder(s) {', '.join(repr(n) for n in empty)} in {root} hold no readable "
                               f"image ({' '.join(IMAGE_EXTENSIONS)})")
    return FolderScan(root, tuple(class_names), tuple(f for f, _ in kept), tuple(label for _, label in kept),
                      skipped, ignored, frozenset(kind for kind, _ in checks if kind))


def split_layout(root: str) -> tuple[str, str] | None:
    """``(train_folder, eval_folder)`` when ``root`` holds ``train`` and ``test``/``validation``/``val`` folders
    (and nothing else), else None."""
    subfolders = _subfolders(root)
    if "train" not in subfolders or not set(subfolders) <= set(SPLIT_FOLDERS) or len(subfolders) < 2:
        return None
    evaluation = next(name for name in SPLIT_FOLDERS[1:] if name in subfolders)
    return os.path.join(root, "train"), os.path.join(root, evaluation)


def holdout_indices(labels, fraction: float, seed: int) -> np.ndarray:
    """Indices of a seeded, per-class held-out ``fraction`` of ``labels``: ``round(fraction x n)`` of each class of
    ``n`` images, at least one when ``n >= 2`` (so every class is evaluated), never all of a class. Sorted."""
    checks.number_in("holdout_fraction", fraction, 0.0, 1.0, low_open=True, high_open=True)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(max(round(fraction * len(members)), 1 if len(members) >= 2 else 0), len(members) - 1)
        held.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
