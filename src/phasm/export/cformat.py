"""Text of generated source: numbers that round-trip exactly, tables, comments that cannot be escaped.

Everything written into generated code that comes from a model folder is either a number formatted
here (finite, exact, the same bytes on every machine) or text passed through :func:`comment_text`,
which keeps printable ASCII only and breaks any comment terminator: a variable name in a model
folder is data and must never become code.

Example
-------
>>> c_float(np.float32(0.1)), c_float(np.float32(-0.0)), c_float(np.float32(3.0))
('0.100000001f', '-0.0f', '3.0f')
>>> c_double(1e-300), c_double(float("inf"))
('1e-300', 'HUGE_VAL')
>>> comment_text("evil */ int x; /*\\n")
'evil * / int x; / *?'
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np

from phasm.errors import ExportError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Names a prefix must not take: C, C++ and Fortran keywords that would break the generated code.
RESERVED = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int long
register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
bool class delete friend namespace new operator private protected public template this throw try typename
using virtual phasm module end function subroutine interface contains program
""".split())


def _finite(value: float, what: str) -> None:
    if not np.isfinite(value):
        raise ExportError(f"{what}: value {value} is not finite; a model with non-finite weights cannot be exported")


def c_float(value: float, what: str = "weight") -> str:
    """A C ``float`` literal that reads back as exactly the float32 ``value``."""
    v = np.float32(value)
    _finite(float(v), what)
    text = f"{float(v):.9g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def c_double(value: float, what: str = "constant") -> str:
    """A C ``double`` literal that reads back as exactly ``value`` (``HUGE_VAL``, a double infinity, for infinities)."""
    v = float(value)
    if np.isinf(v):
        return "HUGE_VAL" if v > 0 else "(-HUGE_VAL)"
    _finite(v, what)
    text = repr(v)
    if not any(c in text for c in ".e"):
        text += ".0"
    return text


def c_table(values: Iterable[str], per_line: int = 8, indent: str = "    ") -> str:
    """Formatted literals as the body of a C initialiser, ``per_line`` per line."""
    items = list(values)
    if not items:
        return indent + "0"
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n".join(indent + line for line in lines)


def c_floats(values: np.ndarray, what: str = "weight") -> list[str]:
    """:func:`c_float` of every element, vectorised (large layers have millions)."""
    flat = np.ascontiguousarray(values, np.float32).reshape(-1)
    if not np.all(np.isfinite(flat)):
        bad = flat[~np.isfinite(flat)][0]
        raise ExportError(f"{what}: value {bad} is not finite; a model with non-finite weights cannot be exported")
    text = np.char.mod("%.9g", flat.astype(np.float64))
    plain = ~(np.char.find(text, ".") >= 0) & ~(np.char.find(text, "e") >= 0)
    text = np.where(plain, np.char.add(text, ".0"), text)
    return np.char.add(text, "f").tolist()


def float_array(name: str, a: np.ndarray, comment: str = "", what: str = "weight") -> str:
    """``static const float name[n] = {...};`` from a float32 array (flattened row-major)."""
    flat = np.ascontiguousarray(a, np.float32).reshape(-1)
    head = f"/* {comment_text(comment)} */\n" if comment else ""
    body = c_table(c_floats(flat, f"{what} {name}"), per_line=6)
    return f"{head}static const float {name}[{max(len(flat), 1)}] = {{\n{body}\n}};\n"


def double_array(name: str, a: np.ndarray, comment: str = "", what: str = "constant") -> str:
    """``static const double name[n] = {...};`` (flattened row-major)."""
    flat = np.asarray(a, np.float64).reshape(-1)
    head = f"/* {comment_text(comment)} */\n" if comment else ""
    body = c_table((c_double(x, f"{what} {name}") for x in flat), per_line=4)
    return f"{head}static const double {name}[{max(len(flat), 1)}] = {{\n{body}\n}};\n"


def int_array(name: str, a: np.ndarray, comment: str = "", ctype: str = "int") -> str:
    """``static const int name[n] = {...};``."""
    flat = np.asarray(a, np.int64).reshape(-1)
    head = f"/* {comment_text(comment)} */\n" if comment else ""
    body = c_table((str(int(x)) for x in flat), per_line=16)
    return f"{head}static const {ctype} {name}[{max(len(flat), 1)}] = {{\n{body}\n}};\n"


def comment_text(text: str) -> str:
    """``text`` made safe inside a C ``/* */``, a C++ ``//`` or a Fortran ``!`` comment line:
    printable ASCII only (others become ``?``), no comment terminators, no line breaks or
    backslashes (a trailing backslash would continue a ``//`` comment onto the next line)."""
    out = "".join(c if " " <= c <= "~" and c != "\\" else "?" for c in str(text))
    while "*/" in out or "/*" in out:
        out = out.replace("*/", "* /").replace("/*", "/ *")
    return out


def check_prefix(prefix: str) -> str:
    """The prefix, checked to be a C identifier (and a Fortran name: a letter first, at most 40 characters)."""
    if not isinstance(prefix, str) or not IDENTIFIER.match(prefix) or not prefix[0].isalpha():
        raise ExportError(f"prefix: expected a C identifier starting with a letter (letters, digits, _), got {prefix!r}")
    if len(prefix) > 40:
        raise ExportError(f"prefix: expected at most 40 characters (Fortran names end at 63 with the suffixes), "
                          f"got {len(prefix)} ({prefix!r})")
    if prefix.lower() in RESERVED:
        raise ExportError(f"prefix: {prefix!r} is a C, C++ or Fortran keyword; choose another name")
    return prefix
