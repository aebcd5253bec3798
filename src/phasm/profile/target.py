"""Which Python program a command line runs (shared by the samplers).

Example
-------
>>> python_target(["python", "-u", "sim.py", "--steps", "3"])
('python', ['sim.py', '--steps', '3'])
>>> python_target(["ls", "-l"]) is None
True
"""

from __future__ import annotations

import os
import sys
from typing import Sequence


def python_target(command: Sequence[str]) -> tuple[str, list[str]] | None:
    """``(python, [script, args...] | ['-m', mod, args...])`` when the command runs a Python program."""
    if not command:
        return None
    exe = os.path.basename(command[0])
    if exe.startswith("python") or exe.startswith("pypy"):
        rest = list(command[1:])
        while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):
            rest = rest[1:]  # interpreter flags (-u, -O, ...)
        if rest and (rest[0] == "-m" or rest[0].endswith(".py") or os.path.isfile(rest[0])):
            return command[0], rest
        return None
    if command[0].endswith(".py"):
        return sys.executable, list(command)
    return None
