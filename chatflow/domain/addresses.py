"""Who talks to whom: an `Address` (a kind and a normalised value), the kinds chatflow itself
knows, phone numbers in E.164, and the conversation id built and read in one place.

An address is written `kind:value` (`tel:+14155550100`, `mailto:ana@example.com`,
`whatsapp:US.13491208655302741918`). Its kind decides how a value is read and normalised, how
it is masked where it need not be whole (logs, the dashboard) and how fast a sender of that kind
may send. The kinds `tel` and `mailto` are defined here for any channel to use; a channel may
bring kinds of its own (`ChannelSpec.address_kinds`), which are registered with it, so that an
address of any registered kind can be parsed, masked and rate-classed by name.

A conversation is one customer on one of our numbers on one channel; its id is also the id of
its Temporal workflow, so the API, the logs and Temporal's own UI all name it the same way.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import phonenumbers

from chatflow.domain.errors import ConfigError
from chatflow.domain.masking import mask, mask_phone, mask_text

CONVERSATION_PREFIX = "chat"


@dataclass(frozen=True)
class AddressKind:
    """What an address of one kind is: how its values are read, masked and rate-classed."""

    name: str  # the `kind` of `kind:value`: tel, mailto, whatsapp, console...
    # The normal form of a value (without `name:` in front); ValueError saying why it is not one.
    normalise: Callable[[str], str]
    # The value with enough hidden that it no longer names a person (logs, the dashboard).
    mask: Callable[[str], str]
    # Which default rate a sender of this kind has (`rates`): a phone number's type, say.
    rate_class: Callable[[str], str]
    # Messages per second a sender of each rate class may send by default; 0 means unlimited.
    rates: Mapping[str, float] = field(default_factory=dict)
    # A regular expression (without groups) that finds values of this kind in running text, such as
    # a log line, to mask them there; "" when they cannot be told from other text.
    pattern: str = ""


@dataclass(frozen=True)
class Address:
    """A customer or a sender: a kind and a value in its kind's normal form; `kind:value` as text."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @classmethod
    def parse(cls, text: str, default_kind: AddressKind | str | None = None) -> Address:
        """The address `text` names, `kind:value` or (with `default_kind`) a bare value of that
        kind; ValueError saying why when it is not one."""
        raw = text.strip()
        name, colon, rest = raw.partition(":")
        kind = _KINDS.get(name.lower()) if colon else None
        if kind is None:
            if default_kind is None:
                known = ", ".join(sorted(_KINDS))
                raise ValueError(f"{text!r} is not an address (kind:value, where kind is one of {known})")
            kind = address_kind(default_kind) if isinstance(default_kind, str) else default_kind
            rest = raw
        return cls(kind.name, kind.normalise(rest))

    def of(self, value: str) -> Address:
        """Another address of this kind (the customer of a conversation on this sender)."""
        return Address(self.kind, value)

    def masked(self) -> str:
        """`kind:value` with the value masked by its kind (all of it when the kind is unknown)."""
        kind = _KINDS.get(self.kind)
        return f"{self.kind}:{kind.mask(self.value) if kind else mask_text(self.value, 0)}"

    def rate_class(self) -> str:
        return address_kind(self.kind).rate_class(self.value)

    def default_rate(self) -> float:
        """Messages per second this address may send by default; 0 means unlimited."""
        kind = address_kind(self.kind)
        return kind.rates.get(kind.rate_class(self.value), 0.0)


_KINDS: dict[str, AddressKind] = {}


def register_kind(kind: AddressKind) -> AddressKind:
    """Make addresses of `kind` known by its name; a name belongs to one kind only."""
    known = _KINDS.setdefault(kind.name, kind)
    if known is not kind:
        raise ValueError(f"address kind {kind.name!r} is defined twice")
    return kind


def address_kind(name: str) -> AddressKind:
    """The registered kind called `name`; ValueError when there is none."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"{name!r} is not a known address kind (one of {', '.join(sorted(_KINDS))})") from None


def address_kinds() -> dict[str, AddressKind]:
    """Every registered kind, by name."""
    return dict(_KINDS)


# -- phone numbers ---------------------------------------------------------------------------------

# Digits that WhatsApp (and old dialling habits) put after a country code and that the E.164 form
# of the number no longer has: Mexico's mobile "1" (abolished in 2019; WhatsApp still reports
# 521 + 10 digits, Meta's Cloud API answers with 52 + 10 digits) and Argentina's mobile "9" when it
# comes with the national "15" as well (+54 9 11 15 2345 6789, which is +54 9 11 2345 6789).
# Argentina's "9" on its own stays: +54 9 ... is the E.164 form of a mobile and WhatsApp's wa_id.
LEGACY_MOBILE_DIGIT = {52: "1", 54: "9"}


def e164(number: str, *, what: str = "number") -> str:
    """The E.164 form of a phone number; ValueError naming `what` when it is not one.

    One customer is one number whichever form a provider reports (`whatsapp:` prefix, spaces,
    Mexico's WhatsApp "521..." or the Cloud API's "52..."), so that they map to one conversation.
    """
    try:
        return _e164(number)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"{what} {number!r} is not an E.164 phone number ({error})") from None
    except _ImpossibleNumber:
        raise ValueError(f"{what} {number!r} is not a possible phone number") from None


class _ImpossibleNumber(Exception):
    pass


# Parsing a number costs about 20 µs, and every webhook names two: the business's own, the same
# on every webhook, and the customer's, which comes back with each of their messages. Bounded,
# so senders the web tier never saw again cannot grow it; what raises is not kept.
@functools.lru_cache(maxsize=4096)
def _e164(number: str) -> str:
    raw = number.strip()
    if raw.startswith("whatsapp:"):
        raw = raw[len("whatsapp:") :]
    parsed = phonenumbers.parse(raw, None)
    if not phonenumbers.is_possible_number(parsed):
        parsed = _without_legacy_mobile_digit(parsed) or parsed
    if not phonenumbers.is_possible_number(parsed):
        raise _ImpossibleNumber
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _without_legacy_mobile_digit(parsed: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber | None:
    """The number without its country's legacy mobile digit, when that makes a possible number."""
    digit = LEGACY_MOBILE_DIGIT.get(parsed.country_code or 0)
    national = str(parsed.national_number or "")
    if digit is None or not national.startswith(digit):
        return None
    try:
        candidate = phonenumbers.parse(f"+{parsed.country_code}{national[1:]}", None)
    except phonenumbers.NumberParseException:
        return None
    return candidate if phonenumbers.is_possible_number(candidate) else None


def phone_rate_class(number: str) -> str:
    """The type of a phone number as a sender, which carriers pace differently."""
    try:
        parsed = phonenumbers.parse(number if number.startswith("+") else f"+{number}", None)
    except phonenumbers.NumberParseException:
        return "short_code" if number.isdigit() and len(number) <= 6 else "long_code"
    if len(str(parsed.national_number)) <= 6:
        return "short_code"
    if phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.TOLL_FREE:
        return "toll_free"
    return "long_code"


def _tel(value: str) -> str:
    # A bare run of digits is how some providers (Meta) write a number with its country code.
    raw = value.strip()
    return e164(raw if raw.startswith("+") or not raw.isdigit() else "+" + raw)


# Messages per second carriers let one number send, by its type.
PHONE_RATES: Mapping[str, float] = {"long_code": 1.0, "toll_free": 3.0, "short_code": 100.0}

# Phone numbers in every form chatflow accepts: E.164, also URL-encoded (`%2B` in an access log's
# query string) and written with spaces, dashes, dots or brackets (`+1 (415) 555-0100`); a bare
# run of 10 to 15 digits, as Meta writes a number with its country code (`14155550100`; an order
# or a millisecond timestamp that long is masked too: better than a number left whole); a
# national number written in groups (`(415) 555-0100`, `415.555.0100`, `1-415-555-0100`). The same number on
# WhatsApp (`whatsapp:+1...`) or the console is found, and masked, the same way.
PHONE_PATTERN = (
    r"(?:\+|%2[Bb])(?=(?:[ .\-()]{0,2}\d){7})\d(?:[ .\-]?\(?\d{1,4}\)?){2,7}(?<=\d)(?!\d)"
    r"|(?<![\w.+%-])[1-9]\d{9,14}(?![\w])"
    r"|(?<![\w.+%\-])(?:1[ .\-])?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}(?![\w\-]|\.\d)"
)

TEL = register_kind(AddressKind("tel", _tel, mask_phone, phone_rate_class, PHONE_RATES, PHONE_PATTERN))


# -- email addresses -------------------------------------------------------------------------------

# RFC 5321's limits: 64 characters before the @, 254 in all.
MAX_LOCAL_PART = 64
MAX_EMAIL = 254
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def email_address(value: str) -> str:
    """`ana@example.com` (the domain lower-cased) from `Ana@Example.COM` or `Ana <ana@example.com>`;
    ValueError saying why when it is not one address."""
    _, addr = email.utils.parseaddr(value)
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or "," in value or any(char.isspace() for char in addr):
        raise ValueError(f"{value!r} is not an email address (name@domain)")
    if len(local) > MAX_LOCAL_PART or len(addr) > MAX_EMAIL:
        raise ValueError(f"{value!r} is longer than an email address may be")
    try:
        labels = domain.encode("idna").decode("ascii").lower().split(".")
    except UnicodeError:
        raise ValueError(f"{value!r} has a domain that is not a host name") from None
    # One label only for `localhost`, which a mail catcher on this machine is.
    if (len(labels) < 2 and labels != ["localhost"]) or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{value!r} has a domain that is not a host name")
    return f"{local}@{domain.lower()}"


def mask_email(value: str) -> str:
    """`ana@example.com` -> `a***@example.com`: the domain tells senders apart, the person is hidden
    (an `@` URL-encoded as `%40` stays so)."""
    for at in ("@", "%40"):
        local, found, domain = value.rpartition(at)
        if found:
            return f"{local[:1]}***{at}{domain}"
    return mask_text(value)


def _email_rate_class(value: str) -> str:
    return "email"


# Messages per second one sending address goes at by default: what mail relays and ESPs take
# from a new sender without throttling; a binding's `rate` changes it.
EMAIL_RATES: Mapping[str, float] = {"email": 10.0}

EMAIL_PATTERN = r"[A-Za-z0-9._+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"

MAILTO = register_kind(AddressKind("mailto", email_address, mask_email, _email_rate_class, EMAIL_RATES, EMAIL_PATTERN))


# -- keyed customer tokens (CHATFLOW_ID_KEY) -------------------------------------------------------
#
# Without CHATFLOW_ID_KEY a conversation id ends with the customer's address, as it always has
# (`chat:sms:+15005550006:+14155550100`). With it, every name chatflow gives to something of a
# customer's that others can list (conversation ids, which are Temporal workflow ids; Redis key
# names) carries a token instead: `~` and the first 128 bits of HMAC-SHA256(key, address value) in
# lower-case base32, 27 characters (`chat:sms:+15005550006:~k3j...`). The same customer always gets
# the same token, so their messages still reach one conversation and a caller who knows the number
# finds it by computing the token; the token tells nothing about the number without the key. The
# number itself travels only in payloads (the workflow's input, its memo), which CHATFLOW_PAYLOAD_KEY
# encrypts.

ID_KEY = "CHATFLOW_ID_KEY"
TOKEN_MARK = "~"  # no address value starts with it
TOKEN_BYTES = 16
MIN_ID_KEY_BYTES = 16
_TOKEN = re.compile(rf"{re.escape(TOKEN_MARK)}[a-z2-7]{{{-(-TOKEN_BYTES * 8 // 5)}}}")
_URLSAFE = str.maketrans("-_", "+/")


def id_key(env: Mapping[str, str] | None = None) -> bytes | None:
    """The key CHATFLOW_ID_KEY holds (base64 of at least 16 random bytes), None when it is unset;
    ConfigError when it is not one."""
    value = (os.environ if env is None else env).get(ID_KEY, "").strip()
    return _decoded_id_key(value) if value else None


@functools.lru_cache(maxsize=4)
def _decoded_id_key(value: str) -> bytes:
    text = value.translate(_URLSAFE)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{ID_KEY} is not base64 (make one: openssl rand -base64 32)") from None
    if len(key) < MIN_ID_KEY_BYTES:
        raise ConfigError(f"{ID_KEY} holds {len(key)} bytes; it takes at least {MIN_ID_KEY_BYTES} (32 advised)")
    return key


def customer_token(customer: str, env: Mapping[str, str] | None = None) -> str:
    """What names the customer `customer` (an address value) in ids and key names: the value
    itself, or with CHATFLOW_ID_KEY its keyed token. A token is its own token."""
    key = id_key(env)
    if key is None or is_token(customer):
        return customer
    digest = hmac.new(key, customer.encode(), hashlib.sha256).digest()[:TOKEN_BYTES]
    return TOKEN_MARK + base64.b32encode(digest).decode().rstrip("=").lower()


def is_token(value: str) -> bool:
    """Whether `value` is a customer's keyed token rather than their address."""
    return _TOKEN.fullmatch(value) is not None


def is_hashed_id(conversation_id: str) -> bool:
    """Whether a conversation id names its customer by a keyed token (never raises)."""
    customer = conversation_id.rpartition(":")[2]
    head, mark, beside = customer.rpartition(BESIDE_MARK)
    return is_token(head if head and mark and _BESIDE.fullmatch(beside) else customer)


# -- conversations ---------------------------------------------------------------------------------

# A conversation beside the customer's main one on a number (a journey with when_busy "beside")
# is named by the main one's id, this mark and a short name of its own:
# `chat:sms:+15005550006:+14155550100~k2x9q4`. The mark is the keyed token's (URL-safe: ids go in
# paths), which only ever starts a customer; no address value ends with it and a run of lower-case
# letters and digits (an email address ends with its domain), so the main id, which every key and
# listing by customer uses, is always the part before it.
BESIDE_MARK = TOKEN_MARK
_BESIDE = re.compile(r"[a-z0-9]{1,32}")


@dataclass(frozen=True)
class ConversationRef:
    """One conversation: a customer on one of our addresses, on one channel. Its `id` is also the
    id of its Temporal workflow; it is built (`id`, `prefix`) and read (`parse`) here only.

    The fields are the conversation workflow's input (`ConversationInput.conversation`) as it is
    recorded in Temporal's histories: their names stay, or running conversations would not load.
    """

    channel: str  # sms | whatsapp | console | email ...
    number: str  # the value of our address (a virtual number, an email sender)
    customer: str  # the value of the customer's address, of the same kind
    provider: str = ""  # the plug-in that carries it; not part of the id ("" when read from one)
    # "" for the customer's main conversation on the number; else the name of one beside it.
    beside: str = ""

    @property
    def id(self) -> str:
        """`chat:{channel}:{number}:{customer}`, the customer as `customer_token` names them;
        a conversation beside the main one adds `~{beside}`."""
        main = f"{self.prefix(self.channel, self.number)}{customer_token(self.customer)}"
        return f"{main}{BESIDE_MARK}{self.beside}" if self.beside else main

    @property
    def main(self) -> ConversationRef:
        """The customer's main conversation on this number (itself when it is the main one)."""
        return replace(self, beside="") if self.beside else self

    def beside_main(self, name: str) -> ConversationRef:
        """A conversation named `name` beside this one's main one; ValueError for a bad name."""
        if not _BESIDE.fullmatch(name):
            raise ValueError(f"{name!r} is not a name for a conversation beside another (a-z, 0-9, 1 to 32)")
        return replace(self, beside=name)

    @property
    def hashed(self) -> bool:
        """Whether this conversation's customer is a keyed token (read from a hashed id): their
        address is then in the conversation's memo and input, not here."""
        return is_token(self.customer)

    @staticmethod
    def prefix(channel: str, number: str) -> str:
        """The start of the id of every conversation on one of our addresses (for listing them)."""
        return f"{CONVERSATION_PREFIX}:{channel}:{number}:"

    @classmethod
    def parse(cls, conversation_id: str) -> ConversationRef:
        """The conversation an id names; ValueError when it is not one. From a hashed id (see
        CHATFLOW_ID_KEY) its `customer` is the token (`hashed`)."""
        parts = conversation_id.split(":", 3)
        if len(parts) != 4 or parts[0] != CONVERSATION_PREFIX or not all(parts[1:]):
            raise ValueError(
                f"{conversation_id!r} is not a conversation id ({CONVERSATION_PREFIX}:channel:number:customer)"
            )
        customer, mark, beside = parts[3].rpartition(BESIDE_MARK)
        if mark and customer and _BESIDE.fullmatch(beside):
            return cls(parts[1], parts[2], customer, beside=beside)
        return cls(parts[1], parts[2], parts[3])


# -- addresses in running text (logs) --------------------------------------------------------------

# A conversation id's head (`chat:<channel>:<our address>:`), also URL-encoded: kept whole, so that
# only the customer after it is masked.
_COLON = r"(?::|%3[Aa])"
_HEAD = rf"{CONVERSATION_PREFIX}{_COLON}[a-z_]+{_COLON}(?:(?!{_COLON})\S)+{_COLON}"


@functools.lru_cache(maxsize=8)
def _finder(patterns: tuple[str, ...]) -> re.Pattern[str]:
    kinds = "|".join(f"(?P<k{i}>{pattern})" for i, pattern in enumerate(patterns))
    return re.compile(rf"(?P<head>{_HEAD})|{kinds}")


def mask_addresses(text: str) -> str:
    """Every address in `text` that its kind can find masked by its kind: `+14155550100` ->
    `+1415*****00`, `ana@example.com` -> `a***@example.com`; a conversation id keeps our address
    (`chat:sms:+15005550006:+1415*****00`)."""
    kinds = [kind for kind in _KINDS.values() if kind.pattern]
    finder = _finder(tuple(kind.pattern for kind in kinds))

    def _mask(match: re.Match[str]) -> str:
        if match["head"]:
            return match["head"]
        kind = kinds[int(str(match.lastgroup)[1:])]
        return kind.mask(match.group())

    return finder.sub(_mask, text)


def mask_value(value: str) -> str:
    """An address's value whose kind is not known (a conversation's customer) masked by the kind
    whose pattern it is, else as `mask` masks a number."""
    for kind in _KINDS.values():
        if kind.pattern and re.fullmatch(kind.pattern, value):
            return kind.mask(value)
    return mask(value)
