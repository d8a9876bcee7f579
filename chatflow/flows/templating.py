"""Messages and URLs templated from the conversation's data.

`str.format` syntax with dotted paths into nested data: "Hi {customer.name}, order {order_id}".
A missing key is a bug in the flow, so it raises `TemplateError` naming the key rather than
sending a customer a message with a hole in it.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from chatflow.domain.errors import TemplateError


class _DataFormatter(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        value: Any = kwargs
        for part in field_name.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise TemplateError(f"template needs {field_name!r}, which the data does not have")
        return value, field_name


_formatter = _DataFormatter()


def render(template: str | Callable[[dict[str, Any]], str], data: dict[str, Any]) -> str:
    if callable(template):
        return str(template(data))
    return _formatter.vformat(template, (), data)


def render_json(value: Any, data: dict[str, Any]) -> Any:
    """Template every string inside a JSON-like value (for HTTP bodies)."""
    if callable(value):
        return value(data)
    if isinstance(value, str):
        return render(value, data)
    if isinstance(value, dict):
        return {k: render_json(v, data) for k, v in value.items()}
    if isinstance(value, list):
        return [render_json(v, data) for v in value]
    return value
