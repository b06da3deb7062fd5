"""Characters a post's text never keeps, defined once for every service."""

from __future__ import annotations

# C0 except tab, newline and carriage return; DEL; the C1 block: they carry no meaning in a post,
# and the search API's highlighting reserves some of them
CONTROL_CHARACTERS = frozenset((*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)))
STRIP_CONTROL: dict[int, None] = dict.fromkeys(CONTROL_CHARACTERS)
"""A ``str.translate`` table that removes the control characters."""
