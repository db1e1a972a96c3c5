"""The ImageNet class-names file of the package (``keras_convnets/models/imagenet_classes.txt``): generated from
tensorflow-datasets' imagenet2012 label file (the classifiers' order, WordNet IDs only) and WordNet 3.0's
``data.noun`` (the names), and checked against tfds' file.

    python -m tools.imagenet_classes --write path/to/wordnet/dict/data.noun
    python -m tools.imagenet_classes --check
"""

import sys

from keras_convnets.models.imagenet import CLASSES_FILE, _tfds_wordnet_ids, _wordnet_names, imagenet_wordnet_ids


def main(argv=None) -> int:
    """``--write DATA_NOUN``: regenerate the classes file; ``--check``: its IDs are tfds' (exit 1 if not)."""
    argv = sys.argv[1:] if argv is None else argv
    ids = _tfds_wordnet_ids()
    if argv[:1] == ["--write"] and len(argv) == 2:
        names = _wordnet_names(argv[1], ids)
        with open(CLASSES_FILE, "w", encoding="utf-8") as f:
            f.write("".join(f"{wnid} {name}\n" for wnid, name in zip(ids, names)))
        print(f"wrote {CLASSES_FILE}: {len(ids)} classes")
        return 0
    if argv == ["--check"]:
        same = imagenet_wordnet_ids() == ids
        print(f"{CLASSES_FILE}: {'matches' if same else 'does not match'} tensorflow-datasets' imagenet2012 labels")
        return 0 if same else 1
    print("usage: python -m tools.imagenet_classes --write WORDNET_DATA_NOUN | --check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
