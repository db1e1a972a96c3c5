"""The ``keras-convnets`` command: one module per subcommand (``train``, ``evaluate``, ``predict``, ``export``,
``convert``, ``models``, ``bench``), each with ``add(commands)`` (its arguments) and ``run(args)``; the only layer
that prints. Library code reports through the ``keras_convnets`` logger, whose records a command prints as its
output lines (:func:`main`).

Exit status 0 on success, 2 on a user error with a one-line reason on stderr (never a traceback). TensorFlow is
imported only once the arguments parse, so ``--help`` and malformed command lines are quick; its C++ start-up lines
are kept off stderr (:func:`keras_convnets.runtime.startup.start_tensorflow`, ``TF_CPP_MIN_LOG_LEVEL=2`` unless the
user set it).
"""

import contextlib
import logging
import os
import sys

from keras_convnets.cli import bench, convert, evaluate, export, models, predict, train
from keras_convnets.cli.common import PROG, Parser, UsageError
from keras_convnets.runtime import startup

#: The subcommands, in ``--help``'s order.
COMMANDS = (train, evaluate, predict, export, convert, models, bench)


def build_parser():
    parser = Parser(prog=PROG, description="Paper-exact ResNet / WRN / ResNeXt / DenseNet: train on tfds, export "
                                           "SavedModels that serve raw images.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add(commands)
    return parser


def _use_legacy_keras(args, reexec):
    """Multi-worker training runs on tf-keras, which ``tf.keras`` is only if ``TF_USE_LEGACY_KERAS=1`` was set
    before TensorFlow was imported; importing this package imported it already. So a command line that asks for
    multi-worker (``--strategy multi-worker``, or ``auto`` with a multi-worker ``TF_CONFIG``) sets the variable and
    re-executes itself (same process id, same arguments): ``reexec`` is true for a real command line; a caller of
    :func:`main` with its own ``argv`` gets a usage error instead."""
    from keras_convnets.models.backend import BACKEND, KERAS_3
    from keras_convnets.runtime import distribute

    if BACKEND != "tensorflow":  # Keras on JAX: tf.distribute strategies are refused when the run is planned
        return
    try:
        if getattr(args, "command", None) != "train" or not distribute.needs_legacy_keras(args.strategy):
            return
    except distribute.StrategyError as error:  # TF_CONFIG is not JSON
        raise UsageError(str(error)) from None
    if not distribute.legacy_keras_available():
        raise UsageError("multi-worker training runs on tf-keras, which is not installed: "
                         f"{distribute.MULTIWORKER_INSTALL}")
    if not KERAS_3:
        return
    if not reexec or os.environ.get(distribute.LEGACY_KERAS_ENV) == "1":
        raise UsageError(f"multi-worker training runs on tf-keras: set {distribute.LEGACY_KERAS_ENV}=1 before "
                         "TensorFlow is imported, or run the keras-convnets command")
    os.environ[distribute.LEGACY_KERAS_ENV] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "keras_convnets.cli", *sys.argv[1:]])


class _PrintHandler(logging.Handler):
    """The library's log records as the command's output lines: the message alone, on the ``sys.stdout`` of the
    moment (what the user reads; warnings included, as the command always printed them)."""

    def emit(self, record):
        try:
            print(self.format(record), flush=True)
        except Exception:  # noqa: BLE001 (logging's contract: a handler never raises)
            self.handleError(record)


@contextlib.contextmanager
def _library_messages_printed():
    """The ``keras_convnets`` logger's INFO records printed for the duration of a command (library code logs; only
    the command line prints), then the logger as it was."""
    logger = logging.getLogger("keras_convnets")
    handler = _PrintHandler()
    before = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]


def main(argv=None) -> int:
    """Runs the command line ``argv`` (default ``sys.argv[1:]``) and returns the exit status."""
    with _library_messages_printed():
        return _main(argv)


def _main(argv) -> int:
    startup.prefer_onednn()  # before anything imports TensorFlow
    startup.quiet_tensorflow_logs()  # TF_CPP_MIN_LOG_LEVEL=2 unless the user set it
    try:
        args = build_parser().parse_args(argv)
        # TensorFlow's start-up notices (and a driverless cuInit error) kept off the user's screen; a multi-worker
        # command re-executes itself afterwards with TF_CPP_MIN_LOG_LEVEL in its environment, and does so again.
        if getattr(args, "before_start", None):  # what a command refuses before Keras or TensorFlow start
            args.before_start(args)
        startup.load_keras_first()  # Keras on PyTorch: torch must load before TensorFlow
        startup.start_tensorflow()
        _use_legacy_keras(args, reexec=argv is None)
        return int(args.func(args) or 0)
    except UsageError as error:
        message = " ".join(str(error).split())
        print(message if message.startswith(PROG) else f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `keras-convnets models | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
