"""Messages and URLs templated from the conversation's data.

`str.format` syntax with dotted paths into nested data: "Hi {customer.name}, order {order_id}".
A missing key is a bug in the flow, so it raises `TemplateError` naming the key rather than
sending a customer a message with a hole in it.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

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


# Where in a URL a templated value lands, as the template is read from left to right.
_ORIGIN, _PATH, _QUERY, _FRAGMENT = range(4)


def _advance(where: int, text: str, seen_authority: bool) -> tuple[int, bool]:
    """The part of the URL after `text` (code's own text, taken as it is), starting in `where`."""
    for index, char in enumerate(text):
        if where == _ORIGIN:
            if text.startswith("//", index) or (char == "/" and text[index - 1 : index] == "/"):
                seen_authority = True
            elif seen_authority and char in "/?#":
                where = {"/": _PATH, "?": _QUERY, "#": _FRAGMENT}[char]
        elif where == _PATH and char in "?#":
            where = _QUERY if char == "?" else _FRAGMENT
        elif where == _QUERY and char == "#":
            where = _FRAGMENT
    return where, seen_authority


def _encoded(value: Any, field_name: str) -> str:
    """A value from the data as ONE path segment or query value: `/`, `?`, `#`, `&`, `=` and `%`
    are percent-encoded, and `.` / `..` cannot walk up the path."""
    text = str(value)
    if text == "":
        # `/orders/{id}` with an empty id would ask for `/orders/`, another resource.
        raise TemplateError(f"URL template needs {field_name!r}, which is empty")
    if text in (".", ".."):
        return text.replace(".", "%2E")
    return quote(text, safe="")


def render_url(template: str | Callable[[dict[str, Any]], str], data: dict[str, Any], code: Mapping[str, Any]) -> str:
    """The URL of an `Http` step: safe by construction against what customers and journeys send.

    - A field before the URL's path (its scheme, host and port: `{api}` in `{api}/orders/{id}`)
      takes its value from `code` (the flow's `defaults`: its code and configuration), never from
      the data, which a journey or a reply may have changed; a field not in `code` there is an error.
    - A field in the path, the query or the fragment is one percent-encoded value: a reply of
      `../../admin?x=1#` stays one path segment.
    - A callable URL is called with the data, its values from `code` that are URLs put back.
    The result must be an absolute http(s) URL.
    """
    if callable(template):
        urls = {k: v for k, v in code.items() if isinstance(v, str) and v.startswith(("http://", "https://"))}
        url = str(template({**data, **urls}))
    else:
        parts: list[str] = []
        where, seen_authority = _ORIGIN, False
        for literal, field_name, spec, conversion in _formatter.parse(template):
            parts.append(literal)
            where, seen_authority = _advance(where, literal, seen_authority)
            if field_name is None:
                continue
            if where == _ORIGIN:
                if field_name.split(".")[0] not in code:
                    raise TemplateError(
                        f"URL template {template!r}: {{{field_name}}} gives the URL's scheme or host, so it must be "
                        "one of the flow's `defaults` (code or configuration), never conversation data"
                    )
                value, _ = _formatter.get_field(field_name, (), code)
                text = _formatter.format_field(_formatter.convert_field(value, conversion), spec or "")
                parts.append(text)
                where, seen_authority = _advance(where, text, seen_authority)
            else:
                value, _ = _formatter.get_field(field_name, (), data)
                value = _formatter.format_field(_formatter.convert_field(value, conversion), spec or "")
                parts.append(_encoded(value, field_name))
        url = "".join(parts)
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise TemplateError(f"an Http step's URL must be an absolute http(s) URL, not {_without_query(url)!r}")
    return url


class _AnyValue(dict[str, Any]):
    """Stands for any data when a URL template is checked before any conversation has data."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> Any:
        return self

    def __format__(self, spec: str) -> str:
        return "1"


def check_url(template: str | Callable[[dict[str, Any]], str], code: Mapping[str, Any]) -> str | None:
    """Why `render_url` would refuse `template` whatever the data (its host from the data), or None."""
    if callable(template):
        return None
    try:
        render_url(template, _AnyValue(), code)
    except TemplateError as error:
        return str(error.args[0]) if "scheme or host" in str(error) else None
    except (ValueError, TypeError):
        return None
    return None


def _without_query(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]
