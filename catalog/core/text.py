"""Text for people on a terminal: control characters made visible, widths in terminal cells.

Data stays exact everywhere else (JSON, CSV, the artifacts themselves); this
is only for what a person reads. A report's field or a file name can carry an
escape sequence (a title change, a cleared screen) or a newline (a forged
line): :func:`printable` shows such characters as Python-style escapes.
Widths count terminal cells: East Asian wide and fullwidth characters
(Unicode UAX #11, ``W`` and ``F``, which covers most emoji) take two,
combining marks and zero-width joiners none.
"""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"

#: Format characters kept as they are: they join emoji and letters (ZWNJ, ZWJ) and tag emoji flags
#: (U+E0020..U+E007F). Every other format character (bidi overrides, zero-width spaces) is escaped.
_KEPT_FORMAT = frozenset("\u200c\u200d") | frozenset(map(chr, range(0xE0020, 0xE0080)))
_ESCAPED = frozenset(("Cc", "Cs", "Zl", "Zp"))


def _escaped(char: str) -> bool:
    category = unicodedata.category(char)
    return category in _ESCAPED or (category == "Cf" and char not in _KEPT_FORMAT)


def printable(text: str) -> str:
    """``text`` with control, line-separator, bidi/zero-width format and lone surrogate characters escaped.

    ``"a\\x1b]0;x\\x07\\nb"`` becomes ``a\\x1b]0;x\\x07\\nb`` as it is written
    here: one line, nothing the terminal acts on. Backslashes are kept as they
    are. Ordinary text, CJK and emoji pass unchanged.
    """
    if text.isprintable():
        return text
    return "".join(char.encode("unicode_escape").decode("ascii") if _escaped(char) else char for char in text)


def _cells(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    """How many terminal cells ``text`` (already :func:`printable`) takes."""
    return len(text) if text.isascii() else sum(_cells(char) for char in text)


def fit(text: str, cells: int) -> str:
    """``text`` cut to at most ``cells`` cells, ending in ``…`` when something was cut."""
    if width(text) <= cells:
        return text
    kept, used = [], 0
    for char in text:
        used += _cells(char)
        if used > cells - 1:
            break
        kept.append(char)
    return "".join(kept).rstrip("\u200d") + ELLIPSIS


def pad(text: str, cells: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``cells`` cells (on the left when ``right``: numbers)."""
    fill = " " * max(cells - width(text), 0)
    return fill + text if right else text + fill


def human_size(size: int) -> str:
    """A size in bytes for people: 1536 -> '1.5 KiB' (binary units, one decimal)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
