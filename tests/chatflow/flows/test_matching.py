import pytest

from chatflow.domain.messages import InboundMessage, Location, Media, Reaction
from chatflow.flows.matching import (
    Choice,
    Choices,
    anything,
    keyword,
    location,
    media,
    no,
    normalise,
    number,
    reaction,
    regex,
    yes,
)


def msg(text: str = "", payload: str = "", media: list[Media] | None = None) -> InboundMessage:
    return InboundMessage("SM1", "sms", "twilio", "+14155550100", "+15005550006", text, media or [], payload)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  Sí!! ", "si"), ("YES.", "yes"), ("Ça   va?", "ca va"), ("d'accord", "d accord"), ("👍", "👍")],
)
def test_normalise_ignores_case_accents_punctuation_and_spacing(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_keyword_matches_first_word_or_whole_message() -> None:
    menu = keyword("menu", "start over")
    assert menu.match(msg("MENU please")) == "menu"
    assert menu.match(msg("Start over!")) == "start over"
    assert menu.match(msg("show me the menu")) is None
    assert keyword("stop", whole=True).match(msg("stop sending")) is None
    assert keyword("stop", whole=True).match(msg(" Stop. ")) == "stop"


@pytest.mark.parametrize("text", ["yes", "Y", "yep!", "ok", "Sí", "oui", "ja", "sim", "haan", "👍"])
def test_yes_in_several_languages(text: str) -> None:
    assert yes.match(msg(text)) is True
    assert no.match(msg(text)) is None


@pytest.mark.parametrize("text", ["no", "NOPE", "non", "nein", "não", "nahi", "no thanks"])
def test_no_in_several_languages(text: str) -> None:
    assert no.match(msg(text)) is False
    assert yes.match(msg(text)) is None


def test_numbers_and_ranges() -> None:
    assert number().match(msg("42")) == 42
    assert number(1, 5).match(msg("4 stars")) == 4
    assert number(1, 5).match(msg("6")) is None
    assert number(1, 5).match(msg("four")) is None
    assert number(0, 10, integer=False).match(msg("7,5")) == 7.5
    assert number().match(msg("3.5")) is None


def test_regex_saves_the_first_group() -> None:
    order = regex(r"\b([A-Z]-\d{4})\b")
    assert order.match(msg("my order is A-1234 thanks")) == "A-1234"
    assert order.match(msg("no idea")) is None


def test_anything_matches_text_buttons_and_media() -> None:
    assert anything.match(msg("  hi ")) == "hi"
    assert anything.match(msg(payload="BTN_1")) == "BTN_1"
    assert anything.match(msg(media=[Media("https://m.example/1.jpg", "image/jpeg")])) == "https://m.example/1.jpg"
    assert anything.match(msg("   ")) is None


def goto(choices: Choices, message: InboundMessage) -> str | None:
    """Where the choice the message picks goes (None when it picks none)."""
    choice = choices.pick(message)
    return choice.goto if choice else None


def test_choices_by_number_title_or_button_id() -> None:
    choices = Choices((Choice("Track my order", "track"), Choice("Talk to a person", "human", id="HUMAN")))
    assert [o.id for o in choices.options()] == ["1", "HUMAN"]
    assert goto(choices, msg("2")) == "human"
    assert goto(choices, msg("track my ORDER!")) == "track"
    assert goto(choices, msg(payload="HUMAN")) == "human"
    assert choices.pick(msg("3")) is None
    assert choices.pick(msg("something else")) is None


def test_submitted_matches_a_forms_answers_and_nothing_else() -> None:
    from chatflow import submitted
    from chatflow.domain.messages import InboundMessage

    form = InboundMessage(
        "w1",
        "whatsapp",
        "whatsapp_cloud",
        "+14155550100",
        "+15550001111",
        "Sent",
        data={"date": "2026-12-01", "people": 2},
    )
    plain = InboundMessage("w2", "whatsapp", "whatsapp_cloud", "+14155550100", "+15550001111", "hello")
    assert submitted.match(form) == {"date": "2026-12-01", "people": 2}
    assert submitted.match(plain) is None


def test_media_and_location_matchers_save_what_the_customer_sent() -> None:
    photo = InboundMessage(
        "wamid.1",
        "whatsapp",
        "whatsapp_cloud",
        "+14155550100",
        "+15550001111",
        "receipt",
        media=[Media("https://graph.test/v21.0/27548", "image/jpeg", "image", "27548", "receipt")],
    )
    place = InboundMessage(
        "wamid.2",
        "whatsapp",
        "whatsapp_cloud",
        "+14155550100",
        "+15550001111",
        "Location: 1, 2",
        location=Location(48.85, 2.35, "Shop", "1 Rue X"),
    )
    assert media().match(photo) == {
        "kind": "image",
        "url": "https://graph.test/v21.0/27548",
        "id": "27548",
        "caption": "receipt",
        "content_type": "image/jpeg",
    }
    assert media("image").label == "media:image" and media("document").match(photo) is None
    assert media().match(place) is None
    assert location().match(place) == {"latitude": 48.85, "longitude": 2.35, "name": "Shop", "address": "1 Rue X"}
    assert location().match(photo) is None


def test_a_reaction_matches_only_reaction_and_no_text_matcher() -> None:
    thumbs = InboundMessage(
        "wamid.3", "whatsapp", "whatsapp_cloud", "+14155550100", "+15550001111", reaction=Reaction("wamid.OUT1", "👍")
    )
    taken_away = InboundMessage(
        "wamid.4", "whatsapp", "whatsapp_cloud", "+14155550100", "+15550001111", reaction=Reaction("wamid.OUT1")
    )
    # 👍 as text is a yes; as a reaction it is no one's answer but reaction()'s.
    assert [m.match(thumbs) for m in (anything, yes, keyword("👍"), number(), media(), location())] == [None] * 6
    assert reaction().match(thumbs) == {"emoji": "👍", "message_id": "wamid.OUT1"}
    assert reaction("👍").match(thumbs) is not None and reaction("❤️").match(thumbs) is None
    assert reaction().match(taken_away) is None
    assert reaction(removed=True).match(taken_away) == {"emoji": "", "message_id": "wamid.OUT1"}
    assert reaction(removed=True).match(thumbs) is None
    assert (reaction().label, reaction("👍").label) == ("reaction", "reaction:👍")
    with pytest.raises(ValueError, match="no emoji"):
        reaction("👍", removed=True)
