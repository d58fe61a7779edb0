"""The root of every error bwemu raises on purpose.

It lives here, in the lowest layer, because both packages need it and
wrapper_model imports nothing from emulator (the model is written from the
specification alone).  emulator/errors.py builds its branches on it.
"""

from __future__ import annotations


class BwemuError(Exception):
    """Everything bwemu raises on purpose; the text names the input and field."""


class ModelError(BwemuError):
    """The reference model was asked something its specification does not cover."""


class ModelArgumentError(ModelError, ValueError):
    """An argument no C caller could pass (not a u64, unknown operation,
    wrong arity): a bug in the caller, not an input the spec gives a
    meaning to.  Also a ValueError, as Python code expects of a bad value."""


__all__ = ["BwemuError", "ModelArgumentError", "ModelError"]
