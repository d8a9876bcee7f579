"""The TwiML that answers Twilio's inbound webhook."""

from __future__ import annotations

from collections.abc import Sequence

from twilio.twiml.messaging_response import MessagingResponse

from chatflow.domain.channel import WebhookAnswer

TWIML = "text/xml"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def twiml(replies: Sequence[str]) -> WebhookAnswer:
    """Each reply as a <Message> of the answer, else an empty <Response/>.

    Only answers outside any flow (opt-out confirmations, help) travel here: they must reach a
    customer whom the send path now refuses. A flow's replies go out through the API once it has
    run, never in this response.
    """
    if not replies:
        return WebhookAnswer(200, EMPTY_TWIML, TWIML)
    answer = MessagingResponse()
    for reply in replies:
        answer.message(reply)
    return WebhookAnswer(200, str(answer), TWIML)
