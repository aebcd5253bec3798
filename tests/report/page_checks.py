"""What a report page holds, read with the standard library's HTML parser (no browser needed)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

NETWORK = re.compile(r"\b(?:https?|ftp|wss?)://", re.IGNORECASE)  # base64 has no ':', so data URIs never match


@dataclass
class Page:
    sections: list[tuple[str, str]] = field(default_factory=list)  # (part kind, section id)
    parts: list[str] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    svgs: list[dict[str, str]] = field(default_factory=list)
    tables: list[dict[str, int]] = field(default_factory=list)
    scripts: int = 0
    external: list[str] = field(default_factory=list)  # src/href values that are not data: or #anchors


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._part = ""
        self._table: dict[str, int] | None = None
        self._in_thead = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "data-part" in a:
            self._part = a["data-part"]
            self.page.parts.append(a["data-part"])
        if "data-section" in a:
            self.page.sections.append((self._part, a["data-section"]))
        if tag == "img":
            self.page.images.append(a)
        if tag == "svg" and "class" in a:
            self.page.svgs.append(a)
        if tag == "script":
            self.page.scripts += 1
        for key in ("src", "href"):
            if key in a and not (a[key].startswith("data:") or a[key].startswith("#")):
                self.page.external.append(a[key])
        if tag == "table":
            self._table = {"th_head": 0, "td": 0}
        if tag == "thead":
            self._in_thead = True
        if tag == "th" and self._table is not None and self._in_thead:
            self._table["th_head"] += 1
        if tag == "td" and self._table is not None:
            self._table["td"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_thead = False
        if tag == "table" and self._table is not None:
            self.page.tables.append(self._table)
            self._table = None


def parse(html: str) -> Page:
    p = _Parser()
    p.feed(html)
    return p.page


def network_references(html: str) -> list[str]:
    """Every http(s)/ftp/ws(s) URL in the page text (protocol-relative links show in ``Page.external``)."""
    return [m.group(0) for m in NETWORK.finditer(html)]
