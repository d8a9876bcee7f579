"""How many SMS segments a text costs: GSM-7 when every character fits, UCS-2 otherwise.

A single SMS holds 140 bytes: 160 GSM-7 septets or 70 UCS-2 code units. A longer text is sent as
a concatenated SMS whose user-data header leaves 153 septets or 67 code units per segment, and
carriers never split one character across two segments (a GSM-7 escape pair, a UTF-16 surrogate
pair), so segments are counted by packing whole characters.
"""

from __future__ import annotations

from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table: each costs an escape septet plus its own.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

SINGLE_LIMIT: dict[Encoding, int] = {"GSM-7": 160, "UCS-2": 70}
PART_LIMIT: dict[Encoding, int] = {"GSM-7": 153, "UCS-2": 67}


def encoding(text: str) -> Encoding:
    allowed = GSM7_BASIC | GSM7_EXTENDED
    return "GSM-7" if all(char in allowed for char in text) else "UCS-2"


def _units(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENDED else 1
    return 2 if ord(char) > 0xFFFF else 1  # outside the BMP: a surrogate pair


def segments(text: str) -> int:
    """Segments needed to send `text` as SMS (at least 1: an empty body still costs a message)."""
    enc = encoding(text)
    sizes = [_units(char, enc) for char in text]
    if sum(sizes) <= SINGLE_LIMIT[enc]:
        return 1
    count, used = 1, 0
    for size in sizes:
        if used + size > PART_LIMIT[enc]:
            count, used = count + 1, 0
        used += size
    return count
