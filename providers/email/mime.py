"""An OutboundMessage as an email: subject, text and HTML bodies, Message-ID, threading and
the List-Unsubscribe headers (RFC 2369, one-click per RFC 8058).

The subject is the message's own (`Notify(subject=...)`) or else the text's first line, cut to
SUBJECT_LENGTH characters: a flow's message is written as one text for every channel, and its
first line is what a reader of the SMS would see first too. The body is the whole text; the HTML
body is that text escaped, its paragraphs and line breaks kept and its links clickable, so both
bodies say exactly the same thing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from email.headerregistry import Address as MailAddress
from email.message import EmailMessage
from email.utils import formatdate
from html import escape

from chatflow.domain.addresses import MAILTO, Address
from chatflow.domain.messages import OutboundMessage, numbered_menu

SUBJECT_LENGTH = 78  # RFC 5322's recommended line length: whole in every mail client's list
DEFAULT_SUBJECT = "A message for you"
LINK = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
ONE_CLICK = "List-Unsubscribe=One-Click"


def normalise(address: str) -> str:
    """One form of an email address, so one person is one customer (`mailto:` kind's normal
    form: no display name, the domain lower-cased); ValueError when it is no address."""
    return Address.parse(address, MAILTO).value


def subject_of(message: OutboundMessage) -> str:
    subject = message.subject
    if not subject:
        first = next((line.strip() for line in message.text.splitlines() if line.strip()), "")
        subject = first or DEFAULT_SUBJECT
    subject = " ".join(subject.split())  # no line breaks in a header
    return subject if len(subject) <= SUBJECT_LENGTH else subject[: SUBJECT_LENGTH - 1].rstrip() + "…"


def html_of(text: str) -> str:
    """`text` as HTML: escaped, paragraphs at blank lines, line breaks kept, links clickable."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    rendered = []
    for paragraph in paragraphs:
        pieces: list[str] = []
        last = 0
        for link in LINK.finditer(paragraph):
            pieces += [escape(paragraph[last : link.start()]), f'<a href="{escape(link[0])}">{escape(link[0])}</a>']
            last = link.end()
        pieces.append(escape(paragraph[last:]))
        rendered.append("<p>" + "".join(pieces).replace("\n", "<br>\n") + "</p>")
    return (
        '<!doctype html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;line-height:1.5">\n'
        + "\n".join(rendered)
        + "\n</body></html>\n"
    )


def new_message_id(sender: str) -> str:
    """A Message-ID (without its angle brackets) in the sender's domain."""
    domain = sender.rpartition("@")[2] or "localhost"
    return f"{uuid.uuid4().hex}@{domain}"


@dataclass(frozen=True)
class Unsubscribe:
    mailto: str  # the address that takes "unsubscribe" emails
    url: str = ""  # the one-click https URL ("" without a public URL: mailto only)


@dataclass(frozen=True)
class Built:
    email: EmailMessage
    message_id: str  # without angle brackets
    subject: str
    text: str
    html: str


def build(
    message: OutboundMessage,
    sender: MailAddress,
    *,
    unsubscribe: Unsubscribe | None = None,
    in_reply_to: str = "",
    message_id: str = "",
) -> Built:
    """The email for `message` from `sender` to `message.customer`."""
    message_id = message_id or new_message_id(sender.addr_spec)
    subject = subject_of(message)
    text = numbered_menu(message.text, message.options)
    if message.media:
        text += "\n\n" + "\n".join(media.url for media in message.media)
    html = html_of(text)
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.customer
    email["Subject"] = subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        email["In-Reply-To"] = f"<{in_reply_to}>"
        email["References"] = f"<{in_reply_to}>"
    if unsubscribe is not None:
        links = [f"<mailto:{unsubscribe.mailto}?subject=unsubscribe>"]
        if unsubscribe.url:
            links.append(f"<{unsubscribe.url}>")
            email["List-Unsubscribe-Post"] = ONE_CLICK
        email["List-Unsubscribe"] = ", ".join(links)
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    return Built(email, message_id, subject, text, html)
