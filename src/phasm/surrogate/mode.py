"""Call modes and how one is chosen: explicit attribute, then environment, then ``original``.

Example
-------
>>> parse_mode("capture") is Mode.CAPTURE
True
"""

from __future__ import annotations

import os
import re
from enum import Enum

from phasm.errors import ModeError


class Mode(str, Enum):
    """What a wrapped call does."""

    ORIGINAL = "original"    #: call the function, nothing else
    CAPTURE = "capture"      #: call the function and record inputs/outputs
    MODEL = "model"          #: call the model only (error if none is loaded)
    AUTO = "auto"            #: model + trust gate; untrusted calls fall back and are captured
    SHADOW = "shadow"        #: call both, return the original's result, record the model's error
    SUMMARIZE = "summarize"  #: call the function and record input/output ranges and statistics

    def __str__(self) -> str:
        return self.value


ENV_VAR = "PHASM_CALL_MODE"


def parse_mode(value: "Mode | str", *, source: str = "mode") -> Mode:
    """A :class:`Mode` from a name (case-insensitive), or an error listing the valid names."""
    if isinstance(value, Mode):
        return value
    try:
        return Mode(str(value).strip().lower())
    except ValueError:
        valid = ", ".join(m.value for m in Mode)
        raise ModeError(f"unknown call mode {value!r} (from {source}); valid modes: {valid}") from None


def env_var_for(name: str) -> str:
    """The per-surrogate override variable: ``PHASM_CALL_MODE_<NAME>`` (non-alphanumerics -> ``_``)."""
    return f"{ENV_VAR}_{re.sub(r'[^0-9A-Za-z]', '_', name).upper()}"


def mode_from_env(name: str) -> Mode:
    """``PHASM_CALL_MODE_<NAME>``, else ``PHASM_CALL_MODE``, else ``original``."""
    specific = env_var_for(name)
    for var in (specific, ENV_VAR):
        value = os.environ.get(var)
        if value:
            return parse_mode(value, source=f"environment variable {var}")
    return Mode.ORIGINAL
