from chatflow.domain.addresses import Address
from chatflow.domain.config import NumberBinding
from chatflow.domain.messages import InboundMessage
from chatflow.edge.triggers import route

BINDING = NumberBinding(
    address=Address("tel", "+15005550006"),
    provider="twilio",
    channel="sms",
    flow="demo",
    keywords={"JOIN": "signup", "price list": "prices"},
)


def message(text: str) -> InboundMessage:
    return InboundMessage(
        id="SM1", channel="sms", provider="twilio", customer="+14155550100", number=BINDING.number, text=text
    )


def test_the_first_word_starts_its_flow_in_any_case() -> None:
    assert route(BINDING, message("JOIN")) == "signup"
    assert route(BINDING, message("join please")) == "signup"
    assert route(BINDING, message("  Join! ")) == "signup"


def test_a_keyword_of_several_words_matches_the_whole_message() -> None:
    assert route(BINDING, message("Price List")) == "prices"
    assert route(BINDING, message("price")) == "demo"


def test_other_messages_go_to_the_numbers_flow() -> None:
    assert route(BINDING, message("I want to join")) == "demo"
    assert route(BINDING, message("")) == "demo"
