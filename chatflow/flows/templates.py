"""WhatsApp templates as a flow declares them: what a step sends outside the 24-hour window.

WhatsApp lets a business send free text only within 24 hours of the customer's last message;
outside it (a journey to a customer who never wrote, a reminder a day later) only a template the
business had approved may go. A step names its template and where its parameters come from:

    Say("Your payment for order {order_id} failed: {payment_link}",
        template=Template("payment_failed", language="en", body=["{order_id}", "{payment_link}"],
                          content_sid="HX..."))

Inside the window the step's text goes; outside it the template, its parameters filled in from
the conversation's data the way a step's text is. The Cloud API takes the name, language and
parameters (positional `{{1}}` from a list, named `{{order_id}}` from a mapping); Twilio takes the
Content SID and its variables (by default the body's parameters, numbered from "1" or named).

A template approved in several languages lists the others in `languages`
(`Template("goodbye", language="en", languages=["es", "pt_BR"])`): a customer whose locale is one
of them (or its language: `es` for `es_MX`) gets it in that one, anyone else in `language`. A
`content_sid` is Twilio's content in `language`; in another one Twilio's content is looked up by
the template's name and that language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatflow.domain.messages import TemplateButton, TemplateMessage, TemplateParameter
from chatflow.flows.templating import render

CATEGORIES = ("utility", "marketing", "authentication")
HEADER_MEDIA = ("image", "video", "document")
BUTTON_KINDS = ("url", "quick_reply", "copy_code")

Parameters = Sequence[str] | Mapping[str, str]


@dataclass(frozen=True)
class Button:
    """A template button's dynamic part: a URL button's suffix, a quick reply's payload or a
    coupon code, at the button's position in the approved template."""

    index: int
    value: str
    kind: str = "url"

    def __post_init__(self) -> None:
        if self.kind not in BUTTON_KINDS:
            raise ValueError(f"button kind must be one of {', '.join(BUTTON_KINDS)}, not {self.kind!r}")


def _parameters(values: Parameters, what: str) -> tuple[tuple[str, str], ...]:
    """(name, value) pairs: names empty for a list (positional parameters)."""
    if isinstance(values, str):
        raise TypeError(f"{what} parameters are a list or a mapping, not a string")
    if isinstance(values, Mapping):
        return tuple((str(name), str(value)) for name, value in values.items())
    return tuple(("", str(value)) for value in values)


@dataclass(frozen=True, init=False)
class Template:
    """An approved WhatsApp template and where its parameters come from in the data."""

    name: str
    language: str
    category: str
    header: tuple[tuple[str, str], ...]
    header_media: str
    body: tuple[tuple[str, str], ...]
    buttons: tuple[Button, ...]
    content_sid: str
    variables: tuple[tuple[str, str], ...] = field(default=())
    languages: tuple[str, ...] = field(default=())

    def __init__(
        self,
        name: str,
        *,
        language: str = "en_US",
        category: str = "utility",
        header: Parameters = (),
        header_media: str = "",
        body: Parameters = (),
        buttons: Sequence[Button | str] = (),
        content_sid: str = "",
        variables: Mapping[str, str] | None = None,
        languages: Sequence[str] = (),
    ) -> None:
        """`languages`: the other languages it was approved in, for customers whose locale is one.
        `header_media`: image, video or document when the header is one (its link, from the
        data, is then the header's one parameter). `buttons`: a string is the URL suffix of the
        button at its position. `variables`: Twilio's Content variables when they are not the
        body's parameters."""
        if not name:
            raise ValueError("a template needs the name it was approved under")
        if category not in CATEGORIES:
            raise ValueError(f"template category must be one of {', '.join(CATEGORIES)}, not {category!r}")
        if header_media and header_media not in HEADER_MEDIA:
            raise ValueError(f"header_media must be one of {', '.join(HEADER_MEDIA)}, not {header_media!r}")
        if content_sid and not content_sid.startswith("HX"):
            raise ValueError(f"a Twilio Content SID starts with HX, not {content_sid[:2]!r}")
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "language", language)
        set_(self, "category", category)
        set_(self, "header", _parameters(header, "header"))
        set_(self, "header_media", header_media)
        set_(self, "body", _parameters(body, "body"))
        set_(
            self,
            "buttons",
            tuple(b if isinstance(b, Button) else Button(i, b) for i, b in enumerate(buttons)),
        )
        set_(self, "content_sid", content_sid)
        set_(self, "variables", tuple((variables or {}).items()))
        if isinstance(languages, str):
            raise TypeError("template languages are a list, such as ['es', 'pt_BR']")
        set_(self, "languages", tuple(languages))

    @property
    def texts(self) -> list[str]:
        """Every value filled in from the data (what a journey's data must hold for it)."""
        values = [self.language, *(v for _, v in self.header), *(v for _, v in self.body)]
        return values + [b.value for b in self.buttons] + [v for _, v in self.variables]

    @property
    def parameter_count(self) -> int:
        return len(self.header) + len(self.body) + len(self.buttons)

    def language_for(self, locale: str | None) -> str | None:
        """The one of `languages` a customer of `locale` gets (`es` or `es_MX` for `es_MX`,
        `es` for `es`); None: the template's `language`."""
        if not locale or not self.languages:
            return None
        wanted = locale.replace("-", "_").lower()
        for language in self.languages:
            if language.replace("-", "_").lower() == wanted:
                return language
        base = wanted.partition("_")[0]
        for language in self.languages:
            if language.replace("-", "_").lower().partition("_")[0] == base:
                return language
        return None

    def in_language(self, language: str) -> Template:
        """This template as approved in `language` (one of `languages`): Twilio's content for it
        is found by name and language, the Content SID being `language`'s."""
        if language == self.language:
            return self
        copy = object.__new__(Template)
        for name in self.__dataclass_fields__:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "language", language)
        object.__setattr__(copy, "languages", ())
        object.__setattr__(copy, "content_sid", "")
        return copy

    def render(self, data: dict[str, Any], locale: str | None = None, *, formats: str | None = None) -> TemplateMessage:
        """The template as sent: every parameter filled in from `data` (TemplateError when a key
        is missing, as for a step's text), in the customer's `locale` when it was approved in it;
        dates and amounts among the parameters written `formats`' way (else `locale`'s)."""
        language = self.language_for(locale)
        if language is not None and language != self.language:
            return self.in_language(language).render(data, formats=formats or locale)
        kind = self.header_media or "text"
        locale = formats or locale
        body = [TemplateParameter(render(value, data, locale), name) for name, value in self.body]
        if self.variables:
            variables = {key: render(value, data, locale) for key, value in self.variables}
        else:
            variables = {p.name or str(i): p.text for i, p in enumerate(body, start=1)}
        return TemplateMessage(
            name=self.name,
            language=render(self.language, data),
            header=[TemplateParameter(render(value, data, locale), name, kind) for name, value in self.header],
            body=body,
            buttons=[
                TemplateButton(
                    b.index,
                    b.kind,
                    [
                        TemplateParameter(
                            render(b.value, data, locale), kind="payload" if b.kind == "quick_reply" else "text"
                        )
                    ],
                )
                for b in self.buttons
            ],
            content_sid=self.content_sid,
            content_variables=variables,
        )


def as_template(value: str | Template) -> Template | None:
    """A step's `template=`: a Template, or (as before there were Template objects) a bare
    `name` or `name:language` without parameters; None for none."""
    if isinstance(value, Template):
        return value
    if not value:
        return None
    name, _, language = value.partition(":")
    return Template(name, language=language or "en_US")
