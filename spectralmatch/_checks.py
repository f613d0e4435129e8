"""Small parameter checks and conversions shared by the public functions."""
from __future__ import annotations

import os

import numpy as np

from .errors import ParameterError


def check_bool(value: object, parameter: str) -> bool:
    """``value`` as a bool; raises :class:`ParameterError` naming ``parameter`` otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{parameter} must be True or False, got {value!r}")
    return bool(value)


def jsonable(value: object) -> object:
    """``value`` made JSON-serialisable for output metadata (paths as text, others as repr)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def check_progress(value: object) -> None:
    """Raise unless ``value`` is None or a callable ``progress(fraction, message)``."""
    if value is not None and not callable(value):
        raise ParameterError(f"progress must be a callable progress(fraction, message) or None, "
                             f"got {value!r}")
