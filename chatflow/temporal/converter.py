"""The data converter chatflow's clients and workers use: the SDK's JSON, decoded faster.

Every payload a worker reads (a message signalled in, a send's result, an activity's input) is
turned back into chatflow's dataclasses by the SDK's `value_to_type`, which calls
`typing.get_type_hints` on each dataclass every time. With postponed annotations that compiles
every field's annotation again: 160 µs to decode one `InboundMessage`, 5 % of a worker's CPU in
a profile of the bench's burst (docs/benchmarks.md). This converter reads each dataclass's hints
once; everything else, and the JSON on the wire, is the SDK's own, so any other Temporal client
(the CLI, the UI, a client with the default converter) reads and writes the same payloads, unless
they are encrypted (CHATFLOW_PAYLOAD_KEY, below): then `chatflow codec-server` decodes them for
Temporal's UI and CLI.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import os
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    PayloadCodec,
    value_to_type,
)

from chatflow.domain.errors import ConfigError


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type hint, whether __init__ takes it) for each field of dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    return tuple((field.name, hints[field.name], field.init) for field in dataclasses.fields(cls))


class _Dataclasses(JSONTypeConverter):
    """Dataclasses decoded as the SDK decodes them (unknown keys ignored, a missing required
    field an error from the constructor), with their type hints read once per class."""

    def to_typed_value(self, hint: type, value: Any) -> Any | None:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)) or not isinstance(value, dict):
            return JSONTypeConverter.Unhandled  # the SDK's own path, and its own error
        given: dict[str, Any] = {}
        not_init: dict[str, Any] = {}
        for name, field_hint, init in _fields(hint):
            if name in value:
                try:
                    converted = value_to_type(field_hint, value[name], [self])
                except Exception as error:
                    raise TypeError(f"Failed converting field {name} on dataclass {hint}") from error
                (given if init else not_init)[name] = converted
        decoded = hint(**given)
        for name, field_value in not_init.items():
            object.__setattr__(decoded, name, field_value)  # as the SDK does, frozen or not
        return decoded


class PayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(
            *(
                JSONPlainPayloadConverter(custom_type_converters=[_Dataclasses()])
                if isinstance(converter, JSONPlainPayloadConverter)
                else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER = dataclasses.replace(DataConverter.default, payload_converter_class=PayloadConverter)


# -- payload encryption ------------------------------------------------------------------------
#
# With CHATFLOW_PAYLOAD_KEY set, every payload a chatflow client or worker writes (workflow and
# activity inputs and results, signals, updates, queries, memos) is encrypted with AES-GCM before
# it leaves the process, as in Temporal's encryption sample: the payload's metadata says
# `encoding: binary/encrypted` and names the key (`encryption-key-id`), its data is a 12-byte
# nonce followed by the ciphertext of the original payload. Search attributes and failure messages
# are not payloads: Temporal stores them as they are.
#
# CHATFLOW_PAYLOAD_KEY=kid2:<base64 key>,kid1:<base64 old key>: the first key encrypts, every one
# decrypts, so a key is rotated by putting the new one first and dropping the old one once no
# history needs it. A key is 16, 24 or 32 random bytes (32: AES-256), in base64.

PAYLOAD_KEY = "CHATFLOW_PAYLOAD_KEY"
ENCRYPTED = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
_URLSAFE = str.maketrans("-_", "+/")  # base64 or base64url, padded or not


def payload_keys(value: str) -> list[tuple[str, bytes]]:
    """The keys in a CHATFLOW_PAYLOAD_KEY value, the one that encrypts first."""
    keys: list[tuple[str, bytes]] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        kid, colon, encoded = entry.partition(":")
        if not colon or not kid.strip():
            raise ConfigError(f"{PAYLOAD_KEY}: each key is kid:base64key (an id, a colon, the key), not {entry[:4]}...")
        text = encoded.strip().translate(_URLSAFE)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{PAYLOAD_KEY}: key {kid.strip()!r} is not base64") from None
        if len(key) not in (16, 24, 32):
            raise ConfigError(
                f"{PAYLOAD_KEY}: key {kid.strip()!r} has {len(key)} bytes; AES-GCM takes 16, 24 or 32 (32 advised)"
            )
        if any(kid.strip() == known for known, _ in keys):
            raise ConfigError(f"{PAYLOAD_KEY}: key id {kid.strip()!r} is given twice")
        keys.append((kid.strip(), key))
    if not keys:
        raise ConfigError(f"{PAYLOAD_KEY} is set but holds no key (kid:base64key,...)")
    return keys


class EncryptionCodec(PayloadCodec):
    """AES-GCM over whole payloads, with key ids so keys can rotate. Payloads written before
    encryption was turned on (not `binary/encrypted`) are read as they are."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("no keys")
        self.key_id, key = keys[0]
        self.encryptor = AESGCM(key)
        self.decryptors = {kid: AESGCM(key) for kid, key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(
                metadata={"encoding": ENCRYPTED, KEY_ID: self.key_id.encode()},
                data=self._encrypt(payload.SerializeToString()),
            )
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded: list[Payload] = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCRYPTED:
                decoded.append(payload)
                continue
            kid = payload.metadata.get(KEY_ID, b"").decode()
            decryptor = self.decryptors.get(kid)
            if decryptor is None:
                raise ValueError(f"a payload is encrypted with key {kid!r}, which {PAYLOAD_KEY} does not have")
            data = payload.data
            try:
                plain = decryptor.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)
            except InvalidTag:  # another deployment's key of the same id: as unreadable as a missing one
                raise ValueError(
                    f"a payload encrypted with key {kid!r} does not decrypt with {PAYLOAD_KEY}'s"
                ) from None
            decoded.append(Payload.FromString(plain))
        return decoded

    def _encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self.encryptor.encrypt(nonce, data, None)


def codec(env: Mapping[str, str] | None = None) -> EncryptionCodec | None:
    """The codec CHATFLOW_PAYLOAD_KEY asks for (None when it is unset); ConfigError when it is wrong."""
    value = (os.environ if env is None else env).get(PAYLOAD_KEY, "")
    return EncryptionCodec(payload_keys(value)) if value.strip() else None


def data_converter(env: Mapping[str, str] | None = None) -> DataConverter:
    """The converter every chatflow client is built with (`chatflow.temporal.client.connect`):
    chatflow's JSON, encrypted when CHATFLOW_PAYLOAD_KEY is set."""
    encryption = codec(env)
    return DATA_CONVERTER if encryption is None else dataclasses.replace(DATA_CONVERTER, payload_codec=encryption)
