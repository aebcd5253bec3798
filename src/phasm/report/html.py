"""HTML building blocks: escaping, numbers, tables with headers, notes.

Every value that comes from a file or a function name is escaped; only :class:`Html` values
(markup built here) pass through unchanged.

Example
-------
>>> seconds(0.000251), seconds(0.0), pct(0.0123)
('251 us', '0 s', '1.23%')
>>> print(table(["name", "value"], [["<x>", 1.5]]))
<table><thead><tr><th scope="col">name</th><th scope="col">value</th></tr></thead><tbody><tr><td>&lt;x&gt;</td><td class="num">1.5</td></tr></tbody></table>
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Sequence


class Html(str):
    """Markup that is already safe (built by this package); every other string is escaped."""


def esc(value: Any) -> str:
    """Escaped text of ``value`` (an :class:`Html` value is kept as it is)."""
    if isinstance(value, Html):
        return value
    return html.escape(str(value), quote=True)


def fmt(x: Any, digits: int = 4) -> str:
    """A number for people: 4 significant digits, ``inf``, ``-`` for missing values."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}".replace(",", " ") if abs(x) >= 10000 else str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{x:.{digits}g}"
    return str(x)


def pct(x: float | None, digits: int = 3) -> str:
    """A share as a percentage (``0.0123`` -> ``1.23%``)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.{digits}g}%"


def seconds(x: float | None) -> str:
    """A duration with a unit that fits: ns, us, ms or s."""
    if x is None or not math.isfinite(x):
        return fmt(x)
    if x == 0:
        return "0 s"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x / 1e-9:.3g} ns"


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return f"<td>{fmt(value)}</td>"
    if isinstance(value, (int, float)):
        return f'<td class="num">{esc(fmt(value))}</td>'
    return f"<td>{esc(value)}</td>"


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], *, caption: str | None = None,
          row_headers: bool = False) -> Html:
    """A table with a header row (and, with ``row_headers``, the first cell of each row as its header)."""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = []
    for r in rows:
        cells = list(r)
        first = f'<th scope="row">{esc(cells[0])}</th>' if row_headers and cells else ""
        rest = cells[1:] if row_headers else cells
        body.append("<tr>" + first + "".join(_cell(c) for c in rest) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return Html(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def key_values(pairs: Iterable[tuple[Any, Any]], *, caption: str | None = None) -> Html:
    """A two-column table: quantity, value."""
    return table(["quantity", "value"], [[k, v] for k, v in pairs], caption=caption, row_headers=True)


def para(text: Any) -> Html:
    return Html(f"<p>{esc(text)}</p>")


def note(text: Any) -> Html:
    """A remark about what is shown or missing."""
    return Html(f'<p class="note">{esc(text)}</p>')


def code(text: Any) -> Html:
    return Html(f"<code>{esc(text)}</code>")


def join(parts: Iterable[str | None]) -> Html:
    return Html("\n".join(p for p in parts if p))
