"""What counts as an integer and as a finite number in a setting or an argument: Python's and numpy's
(a seed of `np.int64(3)` is a seed), never a bool (`True` is an int to Python, not a count). One home
for the checks of settings, env configs, SMAC keywords and evaluation arguments."""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_integer(value: Any) -> bool:
    """An int or a numpy integer (numbers.Integral), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A finite int or float, numpy's included (numbers.Real), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
