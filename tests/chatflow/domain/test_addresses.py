"""Addresses: a kind and a normalised value, parsed, masked and rate-classed by their kind."""

from __future__ import annotations

import base64
import re

import pytest

from chatflow.domain.addresses import (
    ID_KEY,
    MAILTO,
    TEL,
    Address,
    AddressKind,
    ConversationRef,
    address_kind,
    customer_token,
    e164,
    id_key,
    is_hashed_id,
    mask_value,
    register_kind,
)
from chatflow.domain.errors import ConfigError
from chatflow.domain.masking import mask


@pytest.mark.parametrize(
    ("text", "default", "address"),
    [
        ("tel:+1 (415) 555-0100", None, "tel:+14155550100"),
        ("+14155550100", "tel", "tel:+14155550100"),
        ("14155550100", TEL, "tel:+14155550100"),  # Meta writes numbers without their +
        ("TEL:+447700900123", None, "tel:+447700900123"),
        ("mailto:Ana.Lopez@Example.COM", None, "mailto:Ana.Lopez@example.com"),  # the local part is the mailbox's own
        ("Ana <ana@shop.example>", "mailto", "mailto:ana@shop.example"),
        ("  support@bücher.example ", MAILTO, "mailto:support@bücher.example"),
        ("dev@localhost", MAILTO, "mailto:dev@localhost"),  # a mail catcher on this machine
    ],
)
def test_an_address_is_parsed_into_its_kind_and_normal_form(text: str, default: str | None, address: str) -> None:
    parsed = Address.parse(text, default)
    assert str(parsed) == address
    assert Address.parse(str(parsed)) == parsed  # its text reads back as itself


@pytest.mark.parametrize(
    ("text", "default", "says"),
    [
        ("+14155550100", None, "is not an address .kind:value"),
        ("fax:+14155550100", None, "is not an address"),
        ("tel:12", None, "not a possible phone number|not an E.164"),
        ("mailto:ana", None, "is not an email address"),
        ("mailto:ana@shop", None, "domain that is not a host name"),
        ("mailto:ana@-shop.example", None, "domain that is not a host name"),
        ("mailto:ana@example.com, bob@example.com", None, "is not an email address"),
        ("mailto:ana smith@example.com", None, "is not an email address"),
        ("mailto:" + "a" * 65 + "@example.com", None, "longer than an email address may be"),
        ("ana@example.com", "fax", "'fax' is not a known address kind"),
    ],
)
def test_what_is_not_an_address_says_why(text: str, default: str | None, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Address.parse(text, default)


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        (Address("tel", "+14155550100"), "tel:+1415*****00"),
        (Address("mailto", "ana@example.com"), "mailto:a***@example.com"),
        (Address("fax", "+14155550100"), "fax:************"),  # a kind nobody registered: all hidden
    ],
)
def test_an_address_is_masked_by_its_kind(address: Address, masked: str) -> None:
    assert address.masked() == masked


@pytest.mark.parametrize(
    "written", ["+14155550100", "14155550100", "+1 415 555 0100", "+1 (415) 555-0100", "whatsapp:+14155550100"]
)
def test_a_phone_number_is_masked_in_every_form_it_is_accepted_in(written: str) -> None:
    masked = TEL.mask(written)
    assert "5550100" not in masked.replace(" ", "") and "555" not in masked
    assert masked.endswith("1415*****00")


@pytest.mark.parametrize(
    ("number", "rate_class", "rate"),
    [("+14155550100", "long_code", 1.0), ("+18005550100", "toll_free", 3.0), ("+1234567", "short_code", 100.0)],
)
def test_a_phone_numbers_rate_class_is_its_type(number: str, rate_class: str, rate: float) -> None:
    address = Address("tel", number)
    assert (address.rate_class(), address.default_rate()) == (rate_class, rate)


def test_an_email_sender_has_a_rate_of_its_own() -> None:
    assert Address.parse("mailto:news@shop.example").rate_class() == "email"
    assert Address.parse("mailto:news@shop.example").default_rate() > 0


def test_a_channel_can_bring_a_kind_and_a_name_belongs_to_one_kind() -> None:
    kind = AddressKind("test-chat", str.lower, lambda value: value[:1] + "***", lambda value: "chat", {"chat": 5.0})
    assert register_kind(kind) is kind and register_kind(kind) is kind
    assert address_kind("test-chat") is kind
    assert Address.parse("test-chat:AnaL") == Address("test-chat", "anal")
    assert Address("test-chat", "anal").masked() == "test-chat:a***"
    assert Address("test-chat", "anal").default_rate() == 5.0
    with pytest.raises(ValueError, match="defined twice"):
        register_kind(AddressKind("test-chat", str.upper, str, str))
    with pytest.raises(ValueError, match="defined twice"):
        register_kind(AddressKind("tel", str, str, str))


def test_e164_still_reads_every_form_a_provider_reports() -> None:
    assert e164("whatsapp:+14155550100") == "+14155550100"
    assert e164("+5215512345678") == "+525512345678"  # Mexico's WhatsApp "521"
    with pytest.raises(ValueError, match="customer"):
        e164("hello", what="customer")


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+14155550100", "+1415*****00"),
        ("ana@example.com", "a***@example.com"),  # not "ana@*********om"
        ("US.13491208655302741918", mask("US.13491208655302741918")),  # as before: no kind finds it
    ],
)
def test_a_customer_whose_kind_is_not_known_is_masked_by_the_kind_it_looks_like(value: str, masked: str) -> None:
    assert mask_value(value) == masked


# -- CHATFLOW_ID_KEY: customers named by a keyed token ---------------------------------------------


def test_without_an_id_key_a_conversation_id_is_as_it_always_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ID_KEY, raising=False)
    ref = ConversationRef("sms", "+15005550006", "+14155550100")
    assert ref.id == "chat:sms:+15005550006:+14155550100"
    assert ConversationRef.parse(ref.id) == ref and not ConversationRef.parse(ref.id).hashed


def test_with_an_id_key_the_id_carries_a_keyed_token_the_same_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ID_KEY, base64.b64encode(b"k" * 32).decode())
    ref = ConversationRef("sms", "+15005550006", "+14155550100")
    token = customer_token("+14155550100")
    assert ref.id == f"chat:sms:+15005550006:{token}" == ConversationRef("sms", "+15005550006", "+14155550100").id
    assert re.fullmatch(r"~[a-z2-7]{26}", token) and "4155550100" not in ref.id
    assert customer_token("+14155550101") != token  # one customer, one token
    parsed = ConversationRef.parse(ref.id)
    assert parsed.hashed and parsed.id == ref.id and is_hashed_id(ref.id)  # a token is its own token
    monkeypatch.setenv(ID_KEY, base64.b64encode(b"j" * 32).decode())
    assert customer_token("+14155550100") != token  # another key: another token (rotation)


def test_a_conversation_beside_the_main_one_is_named_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ID_KEY, raising=False)
    main = ConversationRef("sms", "+15005550006", "+14155550100")
    beside = main.beside_main("k2x9q4")
    assert beside.id == "chat:sms:+15005550006:+14155550100~k2x9q4"
    assert ConversationRef.parse(beside.id) == beside and beside.main == main and main.main == main
    assert beside.id.startswith(ConversationRef.prefix("sms", "+15005550006"))  # listed by number
    # An email address with the mark in it is a customer, not a conversation beside another.
    email = ConversationRef.parse("chat:email:help@shop.test:ana~x@example.com")
    assert (email.customer, email.beside) == ("ana~x@example.com", "")
    with pytest.raises(ValueError, match="not a name"):
        main.beside_main("Not OK")
    monkeypatch.setenv(ID_KEY, base64.b64encode(b"k" * 32).decode())
    hashed = main.beside_main("k2x9q4")
    assert hashed.id == f"{main.id}~k2x9q4" and is_hashed_id(hashed.id)
    assert ConversationRef.parse(hashed.id).main.id == main.id


@pytest.mark.parametrize(("value", "says"), [("not base64!", "is not base64"), ("c2hvcnQ=", "holds 5 bytes")])
def test_a_bad_id_key_is_a_config_error_naming_it(value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"CHATFLOW_ID_KEY.*{says}|{says}"):
        id_key({ID_KEY: value})
