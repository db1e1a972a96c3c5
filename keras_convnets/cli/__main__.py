"""``python -m keras_convnets.cli``: the command (how a multi-worker command re-executes itself)."""

import sys

from keras_convnets.cli import main

sys.exit(main())
