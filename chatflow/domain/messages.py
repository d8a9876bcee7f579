"""The messages that cross chatflow: what a customer sends, what a flow says, what providers report.

These are plain dataclasses because they travel through Temporal (signals, activity inputs and
results) and the default data converter serialises dataclasses as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.errors import WINDOW_REFUSALS
from chatflow.domain.secrets import Secret

Channel = Literal["sms", "whatsapp", "console"]

# Delivery statuses only move forward by rank; failed and undelivered are final.
STATUS_RANK: dict[str, int] = {
    "accepted": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "undelivered": 6,
    "failed": 6,
}


def status_moves_forward(current: str | None, new: str) -> bool:
    """True when `new` is a later delivery status than `current` (unknown statuses never win)."""
    if new not in STATUS_RANK:
        return False
    if current is None or current not in STATUS_RANK:
        return True
    return STATUS_RANK[new] > STATUS_RANK[current]


@dataclass
class Media:
    url: str  # where it is (for Meta's, the Graph URL of its id: fetching it takes the token)
    content_type: str = ""
    kind: str = ""  # image | video | audio | document | sticker; "" when the provider did not say
    id: str = ""  # the provider's media id (Meta's), when it gave one
    caption: str = ""


@dataclass
class MediaRequest:
    """A flow's ask for a customer's media by the provider's id, fetched by an activity: the
    bytes go to the worker's media folder, never into the conversation's history."""

    provider: str
    media_id: str
    max_bytes: int


@dataclass
class MediaContent:
    """A provider's media as fetched (in the activity only: it holds the bytes)."""

    content: bytes
    content_type: str = ""


@dataclass
class StoredMedia:
    """Where a fetched media is, for the flow: a path in the worker's media folder."""

    path: str
    content_type: str
    sha256: str
    size: int


@dataclass
class Location:
    """A place on the map: one a customer shared, or one a flow sends."""

    latitude: float
    longitude: float
    name: str = ""
    address: str = ""


@dataclass
class Reaction:
    """An emoji put on a message: by the customer on one of ours, or by a flow on the customer's
    last one. An empty `emoji` takes the reaction away (WhatsApp's own way of saying it)."""

    message_id: str  # the provider's id of the message reacted to
    emoji: str = ""

    def describe(self) -> str:
        """The line a transcript shows for it."""
        return (
            f"reacted {self.emoji} to {self.message_id}" if self.emoji else f"removed a reaction to {self.message_id}"
        )


@dataclass
class Option:
    """One choice a customer can pick: a WhatsApp button or list row, or a line of an SMS menu."""

    id: str
    title: str
    description: str = ""


@dataclass
class TemplateParameter:
    """One value of a WhatsApp template as sent: text, or for a header an image, video or
    document (`text` is then its link), or for a quick-reply button its payload."""

    text: str
    name: str = ""  # the Cloud API's named parameter; "" for a positional one ({{1}}, {{2}}...)
    kind: str = "text"  # text | image | video | document | payload


@dataclass
class TemplateButton:
    """The parameters of the template's button at `index` (a URL's suffix, a quick reply's payload)."""

    index: int
    sub_type: str = "url"  # url | quick_reply | copy_code
    parameters: list[TemplateParameter] = field(default_factory=list)


@dataclass
class TemplateMessage:
    """An approved WhatsApp template with its values filled in from the conversation's data: for
    the Cloud API its name, language and components; for Twilio its Content SID and variables."""

    name: str
    language: str = "en_US"
    header: list[TemplateParameter] = field(default_factory=list)
    body: list[TemplateParameter] = field(default_factory=list)
    buttons: list[TemplateButton] = field(default_factory=list)
    content_sid: str = ""  # Twilio's Content template (HX...); "" when none is declared
    content_variables: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """`name:language`, the form `OutboundMessage.template` has always had."""
        return f"{self.name}:{self.language}"


@dataclass
class InboundMessage:
    """A customer's message, as parsed from a provider webhook (or typed on the console)."""

    id: str  # the provider's message id (Twilio MessageSid, Meta wamid): the dedupe key
    channel: str  # sms | whatsapp | console
    provider: str  # twilio | whatsapp_cloud | console
    customer: str  # E.164 number of the customer
    number: str  # E.164 virtual number the customer wrote to
    text: str = ""
    media: list[Media] = field(default_factory=list)
    payload: str = ""  # id of the button or list row the customer tapped, when they tapped one
    profile_name: str = ""
    received_at: str = ""  # ISO 8601, as reported by the web tier
    # Structured content the customer submitted, when the message carries some: the answers of a
    # WhatsApp Flow (its response_json, parsed). `text` stays a readable summary of it.
    data: dict[str, Any] = field(default_factory=dict)
    location: Location | None = None  # a shared location (`text` says it too, for older flows)
    # A reaction to one of our messages: `text` stays "", so no matcher but `reaction()` takes it.
    reaction: Reaction | None = None
    # Handed straight to Temporal because Redis was away: messages of the same customer that the
    # buffer held from before may still be on their way (the workflow waits for them).
    unbuffered: bool = False

    @property
    def conversation(self) -> ConversationRef:
        """The conversation it belongs to."""
        return ConversationRef(self.channel, self.number, self.customer, self.provider)


@dataclass
class BusinessEvent:
    """Something the business's backend reports into a running conversation (`payment_succeeded`)."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = ""  # optional idempotency id; events with the same id are handled once


@dataclass
class OutboundMessage:
    """What a flow says. Providers render `options` as buttons, a list or a numbered text menu."""

    channel: str
    provider: str
    number: str  # the virtual number we send from
    customer: str  # the customer's E.164 number
    text: str
    options: list[Option] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    template: str = ""  # WhatsApp template to use outside the 24-hour service window: `name:language`
    conversation_id: str = ""
    # When the customer last wrote (ISO 8601, "" if never): WhatsApp allows free-form messages
    # only within 24 hours of it.
    last_inbound_at: str = ""
    # The subject on channels that have one (email); "" lets the channel choose (its first line).
    subject: str = ""
    # The flow's quiet hours, when the message waited for them (`09:00-20:00`, `@Europe/Paris`
    # after it when the customer's zone is known): a later send of it (the SMS fallback) waits
    # for them too. "" for an urgent message, an operator's, or a flow without quiet hours.
    quiet_hours: str = ""
    # The template with its parameters (added after `template`, which stays for sends recorded
    # before it: histories replay and in-flight activities decode either way).
    template_message: TemplateMessage | None = None
    location: Location | None = None  # a place sent with the text (WhatsApp)
    # An emoji put on a message of the customer's: WhatsApp Cloud sends it as a reaction; a
    # channel without reactions sends `text` (the emoji) as a message of its own.
    reaction: Reaction | None = None
    # The provider refused its free text after taking it (WhatsApp's window, reported later):
    # only its template may go now, whatever the window looks like from here.
    template_only: bool = False

    def template_to_send(self) -> TemplateMessage | None:
        """The template to send outside the window: the one with parameters, else the bare
        `name:language` (language en_US when not given), else None."""
        if self.template_message is not None:
            return self.template_message
        if not self.template:
            return None
        name, _, language = self.template.partition(":")
        return TemplateMessage(name, language or "en_US")

    @property
    def conversation(self) -> ConversationRef:
        """The conversation it is sent in."""
        return ConversationRef(self.channel, self.number, self.customer, self.provider)


@dataclass
class SendResult:
    message_id: str  # the provider's id for the sent message, used to match delivery statuses
    status: str = "sent"
    segments: int = 1


@dataclass
class DeliveryUpdate:
    """A provider's delivery report for a message we sent."""

    message_id: str
    status: str
    error_code: str = ""
    at: str = ""
    # For a refusal reported after the provider took the message (WhatsApp's window: a failed
    # status with a `WINDOW_REFUSALS` code), what the edge found of the number's SMS fallback: the
    # SMS number and provider the conversation may say it by (the edge took the message off the
    # fallback's sweeper for it), or `fallen_back` when the sweeper has said it already.
    fallback_number: str = ""
    fallback_provider: str = ""
    fallen_back: bool = False

    @property
    def refused_for_window(self) -> bool:
        """WhatsApp took the message and then refused it as outside its window (or undeliverable)."""
        return self.status in ("failed", "undelivered") and self.error_code in WINDOW_REFUSALS


def numbered_menu(text: str, options: list[Option]) -> str:
    """The plain-text rendering of a choice list, for channels without buttons (SMS, console)."""
    if not options:
        return text
    lines = [text, ""] if text else []
    lines += [f"{i}. {option.title}" for i, option in enumerate(options, start=1)]
    return "\n".join(lines)


# A message sent this soon after the customer wrote answers them: it is never held back by quiet
# hours and goes ahead of bulk sends at the rate limiter.
REPLY_WINDOW = timedelta(minutes=10)


@dataclass
class HttpRequest:
    """A flow's call to the business's API, made by an activity. Secrets are named here (and so in
    history) and read from the worker's environment only by the activity."""

    method: str
    url: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    params: dict[str, str] = field(default_factory=dict)  # query parameters, encoded by the activity
    secret_headers: dict[str, Secret] = field(default_factory=dict)
    secret_params: dict[str, Secret] = field(default_factory=dict)


@dataclass
class HttpResponse:
    status: int
    json: Any = None
    text: str = ""


@dataclass
class Notification:
    """A flow's message to someone on another channel (`Notify`): the customer by email as well,
    or a staff member. The conversation sends it and stays where it is."""

    channel: str  # sms | whatsapp | email ...: a channel the config binds one of our addresses to
    to: str  # the recipient's address on that channel
    text: str
    subject: str = ""
