from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from chatflow.flows.quiet_hours import SendWindow, next_allowed_send, time_zones

UTC = UTC
LONDON = "+447700900123"
WINDOW = SendWindow(time(9), time(20))


def test_inside_the_window_a_message_goes_now() -> None:
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    assert next_allowed_send(LONDON, WINDOW, now) == now


def test_after_hours_it_waits_for_the_next_morning_in_the_customers_zone() -> None:
    now = datetime(2025, 7, 15, 21, 30, tzinfo=UTC)  # 22:30 in London (summer time)
    assert next_allowed_send(LONDON, WINDOW, now) == datetime(2025, 7, 16, 9, 0, tzinfo=ZoneInfo("Europe/London"))


def test_before_opening_it_waits_for_today() -> None:
    now = datetime(2025, 1, 15, 5, 0, tzinfo=UTC)  # 21:00 the day before in San Francisco
    sent = next_allowed_send("+14155550100", WINDOW, now)
    assert sent == datetime(2025, 1, 15, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))


def test_a_zone_the_business_knows_wins_over_the_numbers() -> None:
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)  # open in London, 21:00 in Singapore
    sent = next_allowed_send(LONDON, WINDOW, now, tz="Asia/Singapore")
    assert sent == datetime(2025, 1, 16, 9, 0, tzinfo=ZoneInfo("Asia/Singapore"))


def test_a_window_across_midnight() -> None:
    night = SendWindow(time(22), time(6))
    assert night.allows(time(23)) and night.allows(time(5)) and not night.allows(time(12))
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    assert next_allowed_send(LONDON, night, now) == datetime(2025, 1, 15, 22, 0, tzinfo=ZoneInfo("Europe/London"))


def test_a_number_of_several_zones_waits_until_open_in_all() -> None:
    number = "+61412345678"  # an Australian mobile: every Australian zone
    zones = time_zones(number)
    assert len(zones) > 1
    now = datetime(2025, 1, 15, 21, 30, tzinfo=UTC)  # 08:30 in Sydney, 05:30 in Perth
    sent = next_allowed_send(number, WINDOW, now)
    assert all(WINDOW.allows(sent.astimezone(ZoneInfo(z)).time()) for z in zones)
    earlier = sent - timedelta(minutes=1)
    assert not all(WINDOW.allows(earlier.astimezone(ZoneInfo(z)).time()) for z in zones), "the first such moment"
    assert sent > datetime(2025, 1, 16, 9, 0, tzinfo=ZoneInfo("Australia/Sydney"))


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        next_allowed_send(LONDON, WINDOW, datetime(2025, 1, 15, 12, 0))


def test_a_fictional_number_takes_its_countrys_zone() -> None:
    assert "Europe/London" in time_zones(LONDON)
