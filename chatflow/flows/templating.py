"""Messages and URLs templated from the conversation's data.

`str.format` syntax with dotted paths into nested data: "Hi {customer.name}, order {order_id}".
A missing key is a bug in the flow, so it raises `TemplateError` naming the key rather than
sending a customer a message with a hole in it.

Dates, numbers and amounts are written the customer's way (their locale, through Babel) with
these format specs; anything else is `str.format`'s own:

    {due:date}  {due:date:long}  {due:date:d MMMM}     a date (ISO 8601 text, date or datetime)
    {at:time}  {at:datetime}  {at:datetime:full}      a time, in data["timezone"] when given
    {n:number}  {n:number:#,##0.00}  {n:percent}      a number (text, int, float or Decimal)
    {amount:currency:EUR}  {amount:currency:{cur}}    an amount in a currency (ISO 4217)

`short`, `medium` (the default), `long` and `full` are CLDR's widths; any other text after the
kind is a CLDR pattern. "Pay {amount:currency:EUR} by {due:date:long}" is "Pay €12.50 by March
4, 2026" in English and "Pay 12,50 € by 4 de marzo de 2026" in Spanish.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import dates, numbers

from chatflow.domain.errors import TemplateError

DEFAULT_LOCALE = "en"
LOCALE_KINDS = ("date", "time", "datetime", "number", "percent", "currency")
WIDTHS = ("short", "medium", "long", "full")


def _moment(value: Any, field_name: str) -> datetime | date | time:
    if isinstance(value, datetime | date | time):
        return value
    if isinstance(value, str):
        for parse in (datetime.fromisoformat, date.fromisoformat, time.fromisoformat):
            try:
                return parse(value)
            except ValueError:
                continue
    raise TemplateError(f"template shows {field_name!r} as a date or time, but it is {type(value).__name__} {value!r}")


def _number(value: Any, field_name: str) -> Decimal | int | float:
    if isinstance(value, bool):
        raise TemplateError(f"template shows {field_name!r} as a number, but it is {value!r}")
    if isinstance(value, Decimal | int | float):
        return value
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise TemplateError(f"template shows {field_name!r} as a number, but it is {value!r}") from None


class _DataFormatter(string.Formatter):
    def __init__(self, locale: str = DEFAULT_LOCALE, timezone: str | None = None) -> None:
        self.locale = locale
        self.timezone = timezone
        self.field = ""

    def format_field(self, value: Any, format_spec: str) -> Any:
        kind, _, rest = format_spec.partition(":")
        if kind not in LOCALE_KINDS:
            return super().format_field(value, format_spec)
        try:
            return self._localized(kind, rest, value)
        except TemplateError:
            raise
        except (ValueError, TypeError, LookupError) as error:
            raise TemplateError(f"template cannot show {self.field!r} as {format_spec!r}: {error}") from None

    def _zone(self, moment: datetime) -> Any:
        if self.timezone:
            try:
                return ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        # Never the machine's own zone (Babel's default): a replay elsewhere would differ.
        return moment.tzinfo or UTC

    def _localized(self, kind: str, rest: str, value: Any) -> str:
        locale = self.locale or DEFAULT_LOCALE
        if kind in ("number", "percent", "currency"):
            amount = _number(value, self.field)
            if kind == "currency":
                currency, _, pattern = rest.partition(":")
                if not currency:
                    raise TemplateError(
                        f"template shows {self.field!r} as currency but names none ({{x:currency:EUR}})"
                    )
                return numbers.format_currency(amount, currency.upper(), pattern or None, locale=locale)
            if kind == "percent":
                return numbers.format_percent(amount, rest or None, locale=locale)
            return numbers.format_decimal(amount, rest or None, locale=locale)
        moment = _moment(value, self.field)
        width = rest or ("short" if kind == "time" else "medium")
        if kind == "date":
            return dates.format_date(moment if not isinstance(moment, time) else None, width, locale=locale)
        if isinstance(moment, date) and not isinstance(moment, datetime):
            moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        if isinstance(moment, datetime):
            zone = self._zone(moment)
            moment = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
            if kind == "time":
                return dates.format_time(moment, width, tzinfo=zone, locale=locale)
            return dates.format_datetime(moment, width, tzinfo=zone, locale=locale)
        if kind == "time":
            return dates.format_time(moment, width, locale=locale)
        raise TemplateError(f"template shows {self.field!r} as a date and time, but it is a time of day only")

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        value: Any = kwargs
        for part in field_name.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise TemplateError(f"template needs {field_name!r}, which the data does not have")
        self.field = field_name
        return value, field_name


_formatter = _DataFormatter()


def render(template: str | Callable[[dict[str, Any]], str], data: dict[str, Any], locale: str | None = None) -> str:
    """`template` filled in from `data`; dates, numbers and amounts written for `locale` (the
    customer's; English when None), times in `data["timezone"]` when it has one."""
    if callable(template):
        return str(template(data))
    zone = data.get("timezone")
    # A formatter per message: it remembers the field it formats (for errors), and workflows
    # render on several threads.
    return _DataFormatter(locale or DEFAULT_LOCALE, zone if isinstance(zone, str) else None).vformat(template, (), data)


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
