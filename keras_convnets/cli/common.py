"""What every command shares: the program's name, the one-line usage error, the parser that raises it, and the
SavedModel a command reads (a run directory or a SavedModel)."""

import argparse

PROG = "keras-convnets"
DIR_HELP = "train output directory or SavedModel directory"
DATA_DIR_HELP = "tensorflow_datasets directory (default: $TFDS_DATA_DIR, else tfds' ~/tensorflow_datasets)"


class UsageError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def saved_model_dir(path):
    """``path`` itself if it is a SavedModel, else ``path/saved_model``
    (:func:`keras_convnets.serving.saved_model.saved_model_dir`), its error as a usage error."""
    from keras_convnets.serving import saved_model

    try:
        return saved_model.saved_model_dir(path)
    except saved_model.SavedModelError as error:
        raise UsageError(str(error)) from None


def one_line(error) -> str:
    """An exception's message on one line."""
    return " ".join(str(error).split())
