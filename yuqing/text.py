"""Characters a post's text never keeps, defined once for every service."""

from __future__ import annotations

import unicodedata

# C0 except tab, newline and carriage return; DEL; the C1 block: they carry no meaning in a post,
# and the search API's highlighting reserves some of them
CONTROL_CHARACTERS = frozenset((*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)))
STRIP_CONTROL: dict[int, None] = dict.fromkeys(CONTROL_CHARACTERS)
"""A ``str.translate`` table that removes the control characters."""


def place_name(value: object) -> object:
    """A region or unit as it is published: without whitespace around it or invisible (format)
    characters in it, and a blank one as absent (the source's default applies).

    " 城关镇" or "城关镇\u200b" (a zero-width space pasted along with the name) would be a region
    of its own, outside the scope of the real one's responders and counted apart by the alerts.
    The search API reads a region or unit filter the same way.
    """
    if not isinstance(value, str):
        return value
    return "".join(c for c in value if unicodedata.category(c) != "Cf").strip() or None
