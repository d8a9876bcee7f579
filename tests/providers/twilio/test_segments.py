"""SMS segment math: what a message costs, as a carrier counts it."""

import pytest

from providers.twilio.segments import encoding, segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello @ £5, café? Ñ", "GSM-7"),
        ("Price: 5€ [promo] {x}", "GSM-7"),  # extension table, still GSM-7
        ("Grüße aus Köln", "GSM-7"),  # ü, ß and ö are in the basic set
        ("Привет", "UCS-2"),
        ("Thanks 👍", "UCS-2"),
        ("ç", "UCS-2"),  # only the capital Ç is in GSM-7
    ],
)
def test_encoding(text: str, expected: str) -> None:
    assert encoding(text) == expected


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets: each € is an escape pair
        ("€" * 81, 2),
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
    ],
)
def test_segments_by_length(text: str, count: int) -> None:
    assert segments(text) == count


def test_an_escape_pair_is_never_split_across_segments() -> None:
    # 152 septets then "€" (2 septets): the pair moves to segment two, which then holds 2 + 151.
    assert segments("a" * 152 + "€" + "a" * 151) == 2
    assert segments("a" * 152 + "€" + "a" * 152) == 3


def test_a_surrogate_pair_is_never_split_across_segments() -> None:
    assert segments("ж" * 66 + "😀" + "ж" * 65) == 2
    assert segments("ж" * 66 + "😀" + "ж" * 66) == 3
