"""Log masking (issue 18, finding 7): a phone number in every form the app accepts, in a log line,
keeps no more of itself than `mask` keeps of an E.164 number: never the subscriber's digits."""

from __future__ import annotations

import re

import pytest

from chatflow.domain.addresses import mask_addresses

# (as written, the subscriber's digits that must not survive: the number without its country and
# area codes, which `mask` never keeps)
FORMATS = [
    ("14155550100", "5550100"),  # Meta's wa_id: country code, no plus
    ("+1 415 555 0100", "5550100"),
    ("(415) 555-0100", "5550100"),
    ("415.555.0100", "5550100"),
    ("415-555-0100", "5550100"),
    ("415 555 0100", "5550100"),
    ("1-415-555-0100", "5550100"),
    ("+1.415.555.0100", "5550100"),
    ("+14155550100", "5550100"),
    ("whatsapp:+14155550100", "5550100"),
    ("tel:+14155550100", "5550100"),
    ("%2B14155550100", "5550100"),  # URL-encoded, as in an access log's query string
    ("5215512345678", "12345678"),  # Mexico as WhatsApp reports it (521 + 10 digits)
    ("+5215512345678", "12345678"),
    ("525512345678", "12345678"),  # Mexico as the Cloud API answers (52 + 10 digits)
    ("+52 1 55 1234 5678", "12345678"),
    ("whatsapp:5215512345678", "12345678"),
    ("5491123456789", "23456789"),  # Argentina's mobile 9
    ("+54 9 11 2345-6789", "23456789"),
    ("+54 9 11 15 2345 6789", "23456789"),  # with the national 15 as well
    ("+447700900123", "900123"),
]


@pytest.mark.parametrize(("written", "subscriber"), FORMATS)
@pytest.mark.parametrize("around", ["{}", "sent to {}.", "from={}&x=1", '{{"to": "{}"}}', "({})"])
def test_every_phone_format_the_app_accepts_is_masked_in_a_log_line(written: str, subscriber: str, around: str) -> None:
    line = around.format(written)
    masked = mask_addresses(line)
    assert "*" in masked, masked
    assert subscriber not in re.sub(r"\D", "", masked), f"{line!r} -> {masked!r}"


@pytest.mark.parametrize(
    "line",
    [
        "2026-01-01 10:00:00",  # a date and time
        "zone +05:30 at 2026-01-01T10:00:00+00:00",
        "version 1.415.555.0100.2",  # dotted, but part of something longer
        "order 12345678",  # too short to be a number with its country code
    ],
)
def test_what_is_not_a_phone_number_is_left_alone(line: str) -> None:
    assert mask_addresses(line) == line
