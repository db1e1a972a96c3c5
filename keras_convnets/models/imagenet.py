"""The 1,000 ImageNet (ILSVRC-2012) classes of the pretrained models, and ``decode_predictions``.

Class ``i`` of every ImageNet classifier here (keras.applications', torchvision's and timm's weights alike) is the
``i``-th WordNet ID in sorted order, the order of the label file tensorflow-datasets ships
(``tensorflow_datasets/datasets/imagenet2012/labels.txt``: IDs only, no names). ``imagenet_classes.txt`` beside
this module holds, per line, the ID and its readable name: WordNet 3.0's first lemma of that synset, underscores as
spaces (``n01440764 tench``). It is generated, not edited: ``python -m keras_convnets.models.imagenet --write
/usr/share/wordnet/data.noun`` (Debian's ``wordnet-base``) rewrites it from tfds' ID file and WordNet's noun data;
``--check`` compares the IDs with tfds'. Two names repeat, as in WordNet (``crane``: the bird and the machine;
``maillot``: two garments); their IDs tell them apart.

Imports only numpy and :mod:`keras_convnets.checks`, so naming predictions never imports TensorFlow.
"""

import functools
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from keras_convnets import checks

CLASSES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_classes.txt")
NUM_CLASSES = 1000


@functools.lru_cache(maxsize=1)
def _table() -> Tuple[Tuple[str, str], ...]:
    with open(CLASSES_FILE, encoding="utf-8") as f:
        rows = tuple(tuple(line.rstrip("\n").split(" ", 1)) for line in f if line.strip())
    if len(rows) != NUM_CLASSES:
        raise RuntimeError(f"{CLASSES_FILE} has {len(rows)} classes, not {NUM_CLASSES}: regenerate it with "
                           "python -m keras_convnets.models.imagenet --write")
    return rows


def imagenet_class_names() -> List[str]:
    """The readable names of the 1,000 ImageNet classes, in the classifiers' order (``"tench"``, ...)."""
    return [name for _, name in _table()]


def imagenet_wordnet_ids() -> List[str]:
    """The WordNet IDs of the 1,000 ImageNet classes, in the classifiers' order (``"n01440764"``, ...)."""
    return [wnid for wnid, _ in _table()]


def is_placeholder(class_names: Sequence[str]) -> bool:
    """Whether ``class_names`` are the indices ``"0"`` ... ``"999"`` that exports before the names were known carry
    for an ImageNet classifier (the ones to replace by :func:`imagenet_class_names`)."""
    return len(class_names) == NUM_CLASSES and list(class_names) == [str(i) for i in range(NUM_CLASSES)]


def readable(class_names: Sequence[str]) -> List[str]:
    """``class_names``, with an ImageNet classifier's placeholder indices (or its WordNet IDs) as readable names."""
    names = list(class_names)
    if is_placeholder(names) or names == imagenet_wordnet_ids():
        return imagenet_class_names()
    return names


def decode_predictions(probabilities, top: int = 5, class_names: Optional[Sequence[str]] = None) -> list:
    """The ``top`` classes of each row of ``probabilities`` (``[batch, classes]``), best first, as
    ``(class id, name, probability)`` tuples, like ``keras.applications.imagenet_utils.decode_predictions`` but
    without a download. For 1,000 classes (default ``class_names``) the id is the WordNet ID and the name
    WordNet's; for another classifier pass its ``class_names`` (e.g. an export's ``labels.txt``) and the id is the
    class index."""

    checks.positive_int("top", top)
    rows = np.asarray(probabilities)
    if rows.ndim != 2:
        checks.fail("probabilities", "a [batch, classes] array", f"an array of shape {rows.shape}")
    if class_names is None:
        if rows.shape[1] != NUM_CLASSES:
            checks.fail("probabilities", f"[batch, {NUM_CLASSES}] ImageNet scores (or pass class_names)",
                        f"an array of shape {rows.shape}")
        ids, names = imagenet_wordnet_ids(), imagenet_class_names()
    else:
        names = readable(class_names)
        if len(names) != rows.shape[1]:
            checks.fail("class_names", f"{rows.shape[1]} names (one per column of probabilities)",
                        f"{len(names)} names")
        ids = imagenet_wordnet_ids() if len(names) == NUM_CLASSES and names == imagenet_class_names() else \
            [str(i) for i in range(len(names))]
    order = np.argsort(-rows, axis=1, kind="stable")[:, :top]
    return [[(ids[i], names[i], float(row[i])) for i in best] for row, best in zip(rows, order)]


def _tfds_wordnet_ids() -> List[str]:
    """The WordNet IDs tensorflow-datasets ships for imagenet2012, in label order."""
    import tensorflow_datasets

    path = os.path.join(os.path.dirname(tensorflow_datasets.__file__), "datasets", "imagenet2012", "labels.txt")
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def _wordnet_names(data_noun: str, ids: Sequence[str]) -> List[str]:
    """The first lemma of each noun synset ``ids`` (``n`` + 8-digit offset) in WordNet's ``data.noun``."""
    offsets = {wnid[1:] for wnid in ids}
    lemmas = {}
    with open(data_noun, encoding="utf-8") as f:
        for line in f:
            fields = line.split(" ", 5)
            if fields[0] in offsets and len(fields) > 4:  # offset lex_filenum ss_type w_cnt word lex_id ...
                lemmas[fields[0]] = fields[4].replace("_", " ")
    missing = [wnid for wnid in ids if wnid[1:] not in lemmas]
    if missing:
        raise ValueError(f"{data_noun} lacks {len(missing)} ImageNet synsets (first {missing[0]}): not WordNet 3.0")
    return [lemmas[wnid[1:]] for wnid in ids]


__all__ = ["imagenet_class_names", "imagenet_wordnet_ids", "decode_predictions"]
