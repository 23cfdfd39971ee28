"""Text from rule files and cases made inert in every output format.

Titles, texts, notes and patient ids are free text: an author or a case file can put a newline, a
terminal escape, HTML or Markdown in them. Each output format escapes them on the way out:

- :func:`one_line` for plain text (one line per item: a line break in a value cannot start a new
  item); :func:`inert` applies it to every string of a document before a text renderer formats it;
- :func:`md_inline` and :func:`md_code` for Markdown (no raw HTML, links, emphasis or table cells
  from a value);
- the diagram writers (:mod:`pathway.render.diagram`) escape DOT and Mermaid themselves, on top of
  :func:`one_line`; the HTML report escapes with :func:`html.escape`.

Each function is the identity on ordinary text (letters, digits, punctuation such as ``>=``, ``&``,
``(``), so outputs of well-formed rule files do not change.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = ["one_line", "inert", "md_inline", "md_code"]

#: Characters that break a line (or look like one): shown as a space.
_BREAKS = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]")


def _visible(char: str) -> str:
    """A character that does not print as itself, as an escape: ``\\x1b``, ``\\u202e``, ``\\U000f0000``."""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: Any) -> str:
    """``text`` as one line of plain text: line breaks become spaces; every other character that
    does not print as itself (control characters, bidirectional overrides that reorder what a
    reader sees, zero-width and unassigned code points, lone surrogates that no UTF-8 output can
    hold) a visible escape (``\\x1b``); spaces such as U+00A0 and everything printable stay."""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():  # the common case: nothing to do
        return s
    s = _BREAKS.sub(" ", s)
    return "".join(c if c.isprintable() or unicodedata.category(c) == "Zs" else _visible(c) for c in s)


def inert(value: Any) -> Any:
    """A copy of a JSON-like document with :func:`one_line` applied to every string (keys included)."""
    if isinstance(value, str):
        return one_line(value)
    if isinstance(value, dict):
        return {(one_line(k) if isinstance(k, str) else k): inert(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(inert(v) for v in value)
    return value


#: Markdown that a value could start: escaped with a backslash. ``_`` only where it can open or
#: close emphasis (not inside a word, as in ``iv_steroids``); ``[``/``]`` (links, images).
_MD_PUNCT = re.compile(r"[\\`*~|\[\]]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
#: ``<`` that could open an HTML tag, comment or autolink, and ``&`` that could open an entity.
_MD_HTML = re.compile(r"<(?=[A-Za-z/!?])|&(?=#?[A-Za-z0-9]+;)")


def md_inline(text: Any) -> str:
    """``text`` as inline Markdown that renders as itself: one line, no HTML, link, emphasis, code
    span or table cell boundary (``|``) comes from the value."""
    s = one_line(text)
    s = _MD_PUNCT.sub(lambda m: "\\" + m.group(), s)
    return _MD_HTML.sub(lambda m: "&lt;" if m.group() == "<" else "&amp;", s)


def md_code(text: Any) -> str:
    """``text`` as a Markdown code span (safe in a table cell)."""
    s = one_line(text).replace("|", "\\|")
    fence = "`"
    while fence in s:
        fence += "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"
