"""The data converter chatflow's clients and workers use: the SDK's JSON, decoded faster.

Every payload a worker reads (a message signalled in, a send's result, an activity's input) is
turned back into chatflow's dataclasses by the SDK's `value_to_type`, which calls
`typing.get_type_hints` on each dataclass every time. With postponed annotations that compiles
every field's annotation again: 160 µs to decode one `InboundMessage`, 5 % of a worker's CPU in
a profile of the bench's burst (docs/benchmarks.md). This converter reads each dataclass's hints
once; everything else, and the JSON on the wire, is the SDK's own, so any other Temporal client
(the CLI, the UI, a client with the default converter) reads and writes the same payloads.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)


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
