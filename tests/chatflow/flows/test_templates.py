"""Templates as a flow declares them, filled in from the conversation's data."""

from __future__ import annotations

import pytest

from chatflow import Button, Say, Template
from chatflow.domain.errors import TemplateError
from chatflow.domain.messages import OutboundMessage, TemplateMessage, TemplateParameter


def test_positional_body_parameters_and_twilio_variables_come_from_the_data() -> None:
    declared = Template("payment_failed", language="en", body=["{order_id}", "{payment_link}"], content_sid="HX1")
    sent = declared.render({"order_id": "A-1", "payment_link": "https://pay.example.com/A-1"})
    assert sent.body == [TemplateParameter("A-1"), TemplateParameter("https://pay.example.com/A-1")]
    assert (sent.name, sent.language, sent.label) == ("payment_failed", "en", "payment_failed:en")
    assert sent.content_variables == {"1": "A-1", "2": "https://pay.example.com/A-1"}


def test_named_parameters_keep_their_names() -> None:
    sent = Template("greeting", body={"first_name": "{name}"}).render({"name": "Ana"})
    assert sent.body == [TemplateParameter("Ana", "first_name")]
    assert sent.content_variables == {"first_name": "Ana"}


def test_a_missing_key_is_a_template_error_as_for_a_steps_text() -> None:
    with pytest.raises(TemplateError, match="order_id"):
        Template("payment_failed", body=["{order_id}"]).render({})


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"category": "promo"}, "category"),
        ({"header_media": "gif"}, "header_media"),
        ({"content_sid": "MG123"}, "HX"),
        ({"body": "{order_id}"}, "list or a mapping"),
    ],
)
def test_a_wrong_declaration_is_refused_when_the_flow_is_defined(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises((ValueError, TypeError), match=reason):
        Template("t", **kwargs)  # type: ignore[arg-type]


def test_a_bare_name_and_language_still_names_a_template() -> None:
    step = Say("Hi", template="order_update:de")
    assert step.template == Template("order_update", language="de")
    message = OutboundMessage(
        "whatsapp", "whatsapp_cloud", "+15550001111", "+14155550100", "Hi", template="order_update"
    )
    assert message.template_to_send() == TemplateMessage("order_update", "en_US")


def test_a_url_buttons_suffix_is_filled_in() -> None:
    sent = Template("shipped", buttons=["track/{id}", Button(1, "{id}", kind="copy_code")]).render({"id": "7"})
    assert [(b.index, b.sub_type, b.parameters[0].text) for b in sent.buttons] == [
        (0, "url", "track/7"),
        (1, "copy_code", "7"),
    ]
