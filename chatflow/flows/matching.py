"""Reply matchers: how a flow recognises what a customer meant.

Customers type on phones: "Yes!", " si ", "SÍ", "2", "two stars"... Every matcher compares
normalised text (case, accents, punctuation and extra whitespace removed) so that flow authors
write `keyword("stop")` once instead of enumerating spellings.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatflow.domain.messages import InboundMessage, Option

_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


def normalise(text: str) -> str:
    """Case-, accent-, punctuation- and whitespace-insensitive form of a reply."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    # Punctuation becomes a space; symbols such as emoji stay, so "👍" can be a keyword.
    kept = "".join(
        " " if unicodedata.category(c).startswith("P") else c for c in decomposed if not unicodedata.combining(c)
    )
    return _SPACES.sub(" ", kept).strip()


class Matcher(Protocol):
    """Decides whether a reply matches; returns the value to save, or None when it does not match."""

    @property
    def label(self) -> str: ...

    def match(self, message: InboundMessage) -> Any | None: ...


@dataclass(frozen=True)
class Keyword:
    """Matches when the whole message, or (unless `whole`) its first word(s), is one of `words`."""

    words: tuple[str, ...]
    whole: bool = False
    value: Any = None
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or "/".join(self.words)

    def match(self, message: InboundMessage) -> Any | None:
        text = normalise(message.text or message.payload)
        if not text:
            return None
        for word in self.words:
            wanted = normalise(word)
            if text == wanted or (not self.whole and text.startswith(wanted + " ")):
                return self.value if self.value is not None else word
        return None


def keyword(*words: str, whole: bool = False, value: Any = None) -> Keyword:
    """`keyword("menu", "start over")`: the whole message or its first word(s); `whole=True` for only the whole."""
    if not words:
        raise ValueError("keyword() needs at least one word")
    return Keyword(tuple(words), whole=whole, value=value)


_YES_WORDS = (
    # English
    "yes", "y", "yeah", "yea", "yep", "yup", "sure", "ok", "okay", "k", "confirm", "agree",
    "of course", "absolutely", "correct", "right", "👍",
    # Spanish / Portuguese / Italian / French / German / Dutch / Hindi (romanised) / Swahili
    "si", "sim", "claro", "vale", "dale", "certo", "oui", "ouais", "d accord", "ja", "jawohl",
    "klar", "haan", "ha", "haa", "ji", "ndio", "ndiyo",
)  # fmt: skip
_NO_WORDS = (
    "no", "n", "nope", "nah", "never", "decline", "no thanks", "👎",
    "nao", "non", "nein", "nee", "nahi", "nahin", "na", "hapana",
)  # fmt: skip

yes = Keyword(_YES_WORDS, value=True, name="yes")
no = Keyword(_NO_WORDS, value=False, name="no")


@dataclass(frozen=True)
class Number:
    """Matches a number (the whole message, or its first word), optionally within [low, high]."""

    low: float | None = None
    high: float | None = None
    integer: bool = True

    @property
    def label(self) -> str:
        if self.low is None and self.high is None:
            return "number"
        return f"{_fmt(self.low)}-{_fmt(self.high)}"

    def match(self, message: InboundMessage) -> Any | None:
        words = message.text.strip().split()
        if not words:
            return None
        candidate = words[0].rstrip(".!)")
        if not _NUMBER.match(candidate):
            return None
        value: float = float(candidate.replace(",", "."))
        if self.integer:
            if value != int(value):
                return None
            value = int(value)
        if self.low is not None and value < self.low:
            return None
        if self.high is not None and value > self.high:
            return None
        return value


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else str(value)


def number(low: float | None = None, high: float | None = None, *, integer: bool = True) -> Number:
    """`number()` any whole number; `number(1, 5)` a number from 1 to 5 inclusive."""
    return Number(low, high, integer)


@dataclass(frozen=True)
class Regex:
    pattern: str
    flags: int = re.IGNORECASE

    @property
    def label(self) -> str:
        return f"/{self.pattern}/"

    def match(self, message: InboundMessage) -> Any | None:
        found = re.search(self.pattern, message.text, self.flags)
        if found is None:
            return None
        return found.group(1) if found.groups() else found.group(0)


def regex(pattern: str, flags: int = re.IGNORECASE) -> Regex:
    """Matches when `pattern` is found; saves the first group, or the whole match."""
    re.compile(pattern, flags)  # fail at import time, not in a live conversation
    return Regex(pattern, flags)


@dataclass(frozen=True)
class Anything:
    label: str = "anything"

    def match(self, message: InboundMessage) -> Any | None:
        if message.text.strip():
            return message.text.strip()
        if message.payload:
            return message.payload
        if message.media:
            return message.media[0].url
        return None


anything = Anything()


@dataclass(frozen=True)
class Submitted:
    """Matches a form the customer submitted (a WhatsApp Flow's answers); saves its fields."""

    label: str = "submitted"

    def match(self, message: InboundMessage) -> Any | None:
        return dict(message.data) if message.data else None


submitted = Submitted()


@dataclass(frozen=True)
class Attached:
    """Matches a message that carries media (of `kind`: image, video, audio, document, sticker;
    any when ""); saves the first such as {kind, url, id, caption, content_type}."""

    kind: str = ""

    @property
    def label(self) -> str:
        return f"media:{self.kind}" if self.kind else "media"

    def match(self, message: InboundMessage) -> Any | None:
        for item in message.media:
            if not self.kind or item.kind == self.kind or item.content_type.startswith(f"{self.kind}/"):
                return {
                    "kind": item.kind,
                    "url": item.url,
                    "id": item.id,
                    "caption": item.caption,
                    "content_type": item.content_type,
                }
        return None


def media(kind: str = "") -> Attached:
    """A photo, video, voice note, document or sticker the customer sent (`media("image")`)."""
    return Attached(kind)


@dataclass(frozen=True)
class Shared:
    """Matches a location the customer shared; saves {latitude, longitude, name, address}."""

    label: str = "location"

    def match(self, message: InboundMessage) -> Any | None:
        place = message.location
        if place is None:
            return None
        return {"latitude": place.latitude, "longitude": place.longitude, "name": place.name, "address": place.address}


def location() -> Shared:
    """A location the customer shared (WhatsApp)."""
    return Shared()


@dataclass(frozen=True)
class Reacted:
    """Matches a reaction the customer put on one of our messages (of `emoji` only, when given);
    saves {emoji, message_id}. A reaction taken away (no emoji) matches only `removed=True`."""

    emoji: str = ""
    removed: bool = False

    @property
    def label(self) -> str:
        if self.removed:
            return "reaction removed"
        return f"reaction:{self.emoji}" if self.emoji else "reaction"

    def match(self, message: InboundMessage) -> Any | None:
        found = message.reaction
        if found is None or bool(found.emoji) == self.removed:
            return None
        if self.emoji and found.emoji != self.emoji:
            return None
        return {"emoji": found.emoji, "message_id": found.message_id}


def reaction(emoji: str = "", *, removed: bool = False) -> Reacted:
    """An emoji the customer put on one of our messages (`reaction("👍")`); `removed=True`: one
    they took away. Reactions are never anyone's answer but this matcher's."""
    if emoji and removed:
        raise ValueError("reaction(): a removed reaction has no emoji to match")
    return Reacted(emoji, removed)


@dataclass(frozen=True)
class Choice:
    """One entry of a choice list: shown as a button/list row on WhatsApp, a numbered line on SMS."""

    title: str
    goto: str
    id: str = ""
    description: str = ""
    value: Any = None

    def option(self, index: int) -> Option:
        return Option(id=self.id or str(index), title=self.title, description=self.description)


@dataclass(frozen=True)
class Choices:
    """Matches a reply to a choice list: the tapped button's id, the number shown, or the title."""

    choices: tuple[Choice, ...] = field(default_factory=tuple)
    label: str = "choice"

    def options(self) -> list[Option]:
        return [choice.option(i) for i, choice in enumerate(self.choices, start=1)]

    def pick(self, message: InboundMessage) -> Choice | None:
        options = self.options()
        if message.payload:
            for choice, option in zip(self.choices, options, strict=True):
                if message.payload == option.id:
                    return choice
        text = normalise(message.text)
        if not text:
            return None
        first = text.split()[0]
        if first.isdigit() and 1 <= int(first) <= len(self.choices):
            return self.choices[int(first) - 1]
        for choice, option in zip(self.choices, options, strict=True):
            if text in (normalise(choice.title), normalise(option.id)):
                return choice
        return None

    def match(self, message: InboundMessage) -> Any | None:
        choice = self.pick(message)
        if choice is None:
            return None
        return choice.value if choice.value is not None else choice.title
