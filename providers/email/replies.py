"""The customer's own words in a reply: the text above the quoted message, without signature.

mail-parser-reply (maintained, pure Python, several languages) splits a body at the headers mail
clients put above what they quote ("On Mon, ... wrote:", "Am ... schrieb", Outlook's "From:"
block) and drops signatures ("Sent from my iPhone", "Best regards"). What it leaves of lines
quoted with ">" (a client that quotes without such a header) is dropped here.
"""

from __future__ import annotations

from mailparser_reply import EmailReplyParser

LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "da", "sv", "pl", "cs"]
MAX_PARSED = 64 * 1024  # characters parsed: a reply is short, and the parser's regexes need not see a book
_parser = EmailReplyParser(languages=LANGUAGES)


def reply_text(body: str) -> str:
    """The new text of an email reply's plain body."""
    body = body[:MAX_PARSED].replace("\r\n", "\n")
    message = _parser.read(body)
    first = message.replies[0] if message.replies else None
    text = (first.body or first.content) if first is not None else body
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(">")]
    return "\n".join(lines).strip()
