"""Choosing the flow a message starts."""

from chatflow.config import NumberBinding
from providers.intake import flow_for

BINDING = NumberBinding("+15005550006", "twilio", "sms", "demo", keywords={"JOIN": "signup", "hours": "opening_hours"})


def test_the_first_word_picks_a_keyword_flow_whatever_its_case() -> None:
    assert flow_for(BINDING, "join the club") == "signup"
    assert flow_for(BINDING, "  HOURS please") == "opening_hours"


def test_anything_else_goes_to_the_numbers_flow() -> None:
    assert flow_for(BINDING, "I want to join") == "demo"
    assert flow_for(BINDING, "joining") == "demo"
    assert flow_for(BINDING, "") == "demo"
