"""Whether an optional extra is here: without it its tests skip and say why, except where CI requires the extra
(``KERAS_CONVNETS_REQUIRE_<NAME>=1``, set by .ci/run), where they fail instead."""

import importlib.util
import os

import pytest


def _or_fail(reason: str, variable: str) -> str:
    if os.environ.get(variable) == "1":
        pytest.fail(f"{variable}=1 but {reason}")
    return reason


def missing_module(module: str, variable: str):
    """None if ``module`` is importable, else why its tests skip (a failure if ``variable`` is 1)."""
    if importlib.util.find_spec(module) is not None:
        return None
    return _or_fail(f"{module} is not installed (pip install -e \".[{module}]\")", variable)


def needs_format(format: str) -> None:
    """Skips (or, under KERAS_CONVNETS_REQUIRE_DEPLOY=1, fails) when export ``format``'s extra is not installed."""
    from keras_convnets.serving import formats

    try:
        formats.require(format)
    except formats.MissingExtraError as error:
        pytest.skip(_or_fail(str(error), "KERAS_CONVNETS_REQUIRE_DEPLOY"))
