"""Argument checks, one message style for the whole package: ``{argument} must be {what is accepted}; got {value!r}``.

Every public function checks its arguments before TensorFlow sees them and raises a ``ValueError`` that names the
argument and what it accepts; the command line prints that message as its one line. Imports nothing, so both
:mod:`keras_convnets.models` and :mod:`keras_convnets.training` use it.
"""

import math
from typing import Any, Iterable, Optional


def fail(argument: str, accepted: str, value: Any) -> None:
    """Raises the package's ``ValueError``: ``{argument} must be {accepted}; got {value!r}``."""
    raise ValueError(f"{argument} must be {accepted}; got {value!r}")


def _is_number(value: Any) -> bool:
    """A finite int or float (``True``, NaN and infinities are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive_int(argument: str, value: Any) -> int:
    """``value`` if it is an integer > 0 (``True`` is not an integer here)."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        fail(argument, "a positive integer", value)
    return value


def integer_in(argument: str, value: Any, low: int, high: int) -> int:
    """``value`` if it is an integer in ``[low, high]`` (``True`` is not an integer here)."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        fail(argument, f"an integer in [{low}, {high}]", value)
    return value


def number_in(argument: str, value: Any, low: Optional[float] = None, high: Optional[float] = None, *,
              low_open: bool = False, high_open: bool = False) -> float:
    """``float(value)`` if it is a number in the interval (``None`` bounds are unbounded), else the ValueError that
    writes the interval as ``[0, 1)``, ``(0, 1]``, ``>= 0`` or ``> 0``."""
    below = low is not None and (value <= low if low_open else value < low) if _is_number(value) else False
    above = high is not None and (value >= high if high_open else value > high) if _is_number(value) else False
    if not _is_number(value) or below or above:
        if high is None:
            accepted = f"a finite number {'>' if low_open else '>='} {low:g}"
        else:
            accepted = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        fail(argument, accepted, value)
    return float(value)


def one_of(argument: str, value: Any, accepted: Iterable[Any]) -> Any:
    """``value`` if it is one of ``accepted``; the message lists them (``'a', 'b' or None``)."""
    accepted = list(accepted)
    if value not in accepted:
        shown = [repr(a) for a in accepted]
        fail(argument, shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}", value)
    return value


__all__ = ["fail", "positive_int", "integer_in", "number_in", "one_of"]
