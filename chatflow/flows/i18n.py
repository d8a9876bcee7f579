"""Flows in the customer's language: gettext catalogues (through Babel) and the customer's locale.

A flow's texts (what `Say`, `Ask`, `Handover` and `End` send, an `Ask`'s reprompt, its choices'
titles) are written in the flow's `language` and are the catalogue's message ids. Translations
live beside the flow's module, one gettext domain per flow (its name):

    conversations/demo.py
    conversations/locales/demo.pot                     chatflow i18n extract
    conversations/locales/es/LC_MESSAGES/demo.po       chatflow i18n update --locale es, then translated
    conversations/locales/es/LC_MESSAGES/demo.mo       chatflow i18n compile

(`Flow.locales` names another folder.) A worker reads the compiled `.mo` files once, when it
deploys its flows, outside Temporal's sandbox; the workflow only looks texts up in memory, so a
conversation replays as it ran. A flow without catalogues sends its texts exactly as written.

The customer's locale is `data["locale"]`: the journey's, else the language a `AskLanguage` step
saved, else (set when the conversation starts) the first official language of the customer's
number's country, else the flow's `language`. A text with no translation for the locale goes in
the flow's language; `chatflow check` lists those (`untranslated`).
"""

from __future__ import annotations

import inspect
import io
import string
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.languages import get_official_languages
from babel.messages import mofile, pofile
from babel.messages.catalog import Catalog

from chatflow.flows.flow import Flow
from chatflow.flows.matching import Choice
from chatflow.flows.steps import Ask, End, Handover, Say, Step, target_name

LOCALE_KEY = "locale"  # where a conversation's locale lives in its data
FOLDER = "locales"


def normal(locale: str) -> str:
    """`es-MX`, `es_mx` -> `es_MX`: one spelling for lookups (gettext's folders use `_`)."""
    language, _, region = locale.strip().replace("-", "_").partition("_")
    return f"{language.lower()}_{region.upper()}" if region else language.lower()


def _base(locale: str) -> str:
    return normal(locale).partition("_")[0]


@dataclass(frozen=True)
class Catalogues:
    """A flow's translations: locale -> its text (the message id) -> the translation."""

    language: str
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.translations)

    def best(self, locale: str) -> str | None:
        """The catalogue's locale for `locale`: itself, else its language (`es` for `es_MX`),
        else another region of that language; None when there is none (the flow's language)."""
        wanted = normal(locale)
        if wanted in self.translations:
            return wanted
        base = _base(wanted)
        if base in self.translations:
            return base
        return next((found for found in sorted(self.translations) if _base(found) == base), None)

    def gettext(self, text: str, locale: str) -> str:
        """`text` in `locale`, or as written when its catalogue has no translation for it."""
        found = self.best(locale)
        if found is None:
            return text
        return self.translations[found].get(text) or text


_loaded: weakref.WeakKeyDictionary[type[Flow], Catalogues] = weakref.WeakKeyDictionary()

# Babel reads its data files on first use, and a workflow may not open files (Temporal's sandbox
# refuses, and a file changed between a run and its replay would change what it says). Its global
# tables are read here, as the worker imports chatflow; each language's data when a worker loads
# the catalogues of a flow that speaks it (`load`).
get_global("territory_languages")


def _read_locale_data(locale: str) -> None:
    try:
        Locale.parse(normal(locale)).number_symbols  # noqa: B018 - reading it loads the locale's data
    except (UnknownLocaleError, ValueError):
        pass


def folder(flow: type[Flow]) -> Path:
    """Where a flow's catalogues live: `Flow.locales` (relative to the flow's module), else
    `locales` beside the module."""
    module = sys.modules.get(flow.__module__)
    try:
        here = Path(inspect.getfile(module)).resolve().parent if module is not None else Path.cwd()
    except TypeError:  # a module without a file (built in a REPL)
        here = Path.cwd()
    return here / (flow.locales or FOLDER)


def po_path(flow: type[Flow], locale: str) -> Path:
    return folder(flow) / normal(locale) / "LC_MESSAGES" / f"{flow.name}.po"


def pot_path(flow: type[Flow]) -> Path:
    return folder(flow) / f"{flow.name}.pot"


def catalogue_locales(flow: type[Flow]) -> list[str]:
    """The locales with a `.po` (or only a `.mo`) for this flow, sorted."""
    base = folder(flow)
    if not base.is_dir():
        return []
    return sorted(
        entry.name
        for entry in base.iterdir()
        if any((entry / "LC_MESSAGES" / f"{flow.name}{ext}").is_file() for ext in (".po", ".mo"))
    )


def _translations(catalog: Catalog) -> dict[str, str]:
    """What a catalogue translates, as gettext uses it: no fuzzy or empty entries."""
    return {
        message.id: message.string
        for message in catalog
        if isinstance(message.id, str)
        and message.id
        and isinstance(message.string, str)
        and message.string
        and not message.fuzzy
    }


def _compiled(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with path.open("rb") as file:
        return _translations(mofile.read_mo(file))


def load(flow: type[Flow]) -> Catalogues:
    """Read a flow's compiled catalogues (`.mo`) from disk, and keep them for `catalogues`."""
    translations: dict[str, dict[str, str]] = {}
    for locale in catalogue_locales(flow):
        translations[normal(locale)] = _compiled(po_path(flow, locale).with_suffix(".mo"))
    found = Catalogues(flow.language, {k: v for k, v in translations.items() if v})
    for locale in (flow.language, *found.translations):
        _read_locale_data(locale)
    _loaded[flow] = found
    return found


def catalogues(flow: type[Flow]) -> Catalogues:
    """A flow's catalogues, as its worker loaded them when it deployed it (`load`): read from
    disk here only for a flow no worker deployed (a test of the engine alone)."""
    found = _loaded.get(flow)
    return found if found is not None else load(flow)


def localized(flow: type[Flow]) -> bool:
    """Whether the flow speaks more than its own language: it has catalogues or asks the
    customer's language. Only such a flow records a locale in its conversations' data."""
    return bool(catalogues(flow)) or any(isinstance(step, AskLanguage) for step in flow.steps.values())


def number_language(customer: str) -> str | None:
    """The first official language of the country of a customer's number (`+34...` -> `es`),
    from CLDR's data through Babel; None for an address that is no phone number."""
    number = customer.rpartition(":")[2]
    if not number.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code or 0
    )
    if not region or region == "ZZ":
        return None
    languages = get_official_languages(region, de_facto=True)
    return str(languages[0]) if languages else None


def customer_locale(flow: type[Flow], data: Mapping[str, Any], customer: str) -> str:
    """The locale a conversation starts with: the journey's `locale`, else the language of the
    customer's number's country, else the flow's `language`."""
    given = data.get(LOCALE_KEY)
    if isinstance(given, str) and given.strip():
        return normal(given)
    return number_language(customer) or normal(flow.language)


# -- the language question ------------------------------------------------------------------


def language_name(locale: str) -> str:
    """A language's name in itself, as a customer looks for it: `Español`, `Français`."""
    try:
        name = Locale.parse(normal(locale)).get_display_name(normal(locale)) or locale
    except (UnknownLocaleError, ValueError):
        return locale
    return name[:1].upper() + name[1:]


class AskLanguage(Ask):
    """Ask the customer's language and speak it from then on: a choice list of `languages`, each
    in its own name, whose answer is saved as the conversation's `locale`.

        language = AskLanguage("Which language do you prefer?", languages=["en", "es", "fr"])

    The question itself is translated like any text (into the locale the conversation has so
    far). Every answer goes on to `then` (the next declared step by default)."""

    def __init__(
        self,
        text: str | Callable[[dict[str, Any]], str] | None = "Which language do you prefer?",
        *,
        languages: Sequence[str],
        then: str | Step | None = None,
        **kwargs: Any,
    ) -> None:
        if len(languages) < 2:
            raise ValueError("AskLanguage needs at least two languages to offer")
        self.then = target_name(then)
        choices = [Choice(language_name(code), "", id=normal(code), value=normal(code)) for code in languages]
        kwargs.setdefault("save_as", LOCALE_KEY)
        super().__init__(text, choices=choices, **kwargs)
        self.languages = tuple(normal(code) for code in languages)

    def choice_labels(self) -> list[tuple[str, Choice]]:
        return [(f"choice:{choice.value}", choice) for choice in self.choices.choices]

    def edges(self) -> list[tuple[str, str | None]]:
        own = [(label, self.then) for label, _ in self.choice_labels()]
        return own + [edge for edge in super().edges() if not edge[0].startswith("choice:")]


# -- what there is to translate -------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """One text of a flow to translate: where it is and what it is."""

    msgid: str
    step: str
    what: str  # "Say text", "Ask reprompt", "Choice title"...


def texts(flow: type[Flow]) -> list[Text]:
    """Every translatable text of a flow, in the order of its steps (texts a callable makes are
    the flow's own code's and are not seen here; language names an `AskLanguage` offers stay
    each in its own language)."""
    found: list[Text] = []
    for name, step in flow.steps.items():
        if step.builtin:
            continue
        kind = type(step).__name__
        if isinstance(step, Say | Handover | End | Ask):
            if isinstance(step.text, str):
                found.append(Text(step.text, name, f"{kind} text"))
        if isinstance(step, Ask):
            if isinstance(step.reprompt, str):
                found.append(Text(step.reprompt, name, f"{kind} reprompt"))
            if not isinstance(step, AskLanguage):
                for choice in step.choices.choices:
                    found.append(Text(choice.title, name, "Choice title"))
                    if choice.description:
                        found.append(Text(choice.description, name, "Choice description"))
    return found


def fields(text: str) -> set[str]:
    """The data fields a text reads (`{order}`, `{due:date}` -> {"order", "due"})."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:
        return set()


def template(flows: Iterable[type[Flow]]) -> Catalog:
    """The `.pot` of flows sharing one gettext domain (the versions of one flow): each text once,
    with every flow step that sends it as a location (`demo.menu`)."""
    flows = list(flows)
    catalog = Catalog(domain=flows[0].name, project=flows[0].name, fuzzy=False)
    for flow in flows:
        for text in texts(flow):
            where = f"{flow.name}.{text.step}" if len(flows) == 1 else f"{flow.name}@{flow.version}.{text.step}"
            flags = ("python-brace-format",) if fields(text.msgid) else ()
            existing = catalog.get(text.msgid)
            if existing is not None:
                existing.locations.append((where, 0))
                if text.what not in existing.auto_comments:
                    existing.auto_comments.append(text.what)
                continue
            catalog.add(text.msgid, locations=[(where, 0)], flags=flags, auto_comments=[text.what])
    return catalog


def by_domain(flows: Iterable[type[Flow]]) -> Iterator[list[type[Flow]]]:
    """Flows grouped by gettext domain (a flow's versions share its name and catalogues)."""
    groups: dict[str, list[type[Flow]]] = {}
    for flow in flows:
        groups.setdefault(flow.name, []).append(flow)
    for name in sorted(groups):
        yield sorted(groups[name], key=lambda flow: flow.version)


def _po(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    pofile.write_po(buffer, catalog, width=100, omit_header=False)
    return buffer.getvalue()


def extract(flows: Iterable[type[Flow]]) -> list[Path]:
    """Write each flow's `.pot` (`locales/<flow>.pot`); the paths written."""
    written = []
    for group in by_domain(flows):
        path = pot_path(group[-1])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_po(template(group)))
        written.append(path)
    return written


def update(flows: Iterable[type[Flow]], new_locales: Sequence[str] = ()) -> list[Path]:
    """Merge each flow's texts into every `.po` it has (and start one for each of `new_locales`):
    new texts come in untranslated, changed ones fuzzy, gone ones obsolete. The paths written."""
    written = []
    for group in by_domain(flows):
        flow = group[-1]
        fresh = template(group)
        for locale in sorted({*catalogue_locales(flow), *(normal(code) for code in new_locales)}):
            path = po_path(flow, locale)
            if path.is_file():
                with path.open("rb") as file:
                    catalog = pofile.read_po(file, locale=locale, domain=flow.name)
            else:
                catalog = Catalog(locale=locale, domain=flow.name, project=flow.name, fuzzy=False)
            catalog.update(fresh, update_creation_date=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_po(catalog))
            written.append(path)
    return written


def compile_catalogues(flows: Iterable[type[Flow]]) -> list[Path]:
    """Compile every `.po` of the flows into the `.mo` the workers read (fuzzy entries left
    out: gettext's rule); the paths written."""
    written = []
    for _group, _locale, path, catalog in _catalogues(flows):
        compiled = path.with_suffix(".mo")
        with compiled.open("wb") as out:
            mofile.write_mo(out, catalog, use_fuzzy=False)
        written.append(compiled)
    return written


def _catalogues(flows: Iterable[type[Flow]]) -> Iterator[tuple[list[type[Flow]], str, Path, Catalog]]:
    """Each `.po` the flows have, read: the versions of its flow (the newest last), its locale and
    its path."""
    for group in by_domain(flows):
        flow = group[-1]
        for locale in catalogue_locales(flow):
            path = po_path(flow, locale)
            if path.is_file():
                with path.open("rb") as file:
                    yield group, locale, path, pofile.read_po(file, locale=locale, domain=flow.name)


# -- what `chatflow check` reports ----------------------------------------------------------


@dataclass(frozen=True)
class Untranslated:
    """A text of a flow its catalogue for `locale` does not translate (it goes in the flow's
    language), or translates reading data the text does not have."""

    locale: str
    flow: str
    step: str
    what: str
    msgid: str
    problem: str = "untranslated"

    def __str__(self) -> str:
        return f"{self.locale}: {self.flow}.{self.step} ({self.what}) {self.problem}: {self.msgid!r}"


def untranslated(flows: Iterable[type[Flow]]) -> list[Untranslated]:
    """Per locale with a `.po`, the flows' texts it lacks (missing, empty or fuzzy), those whose
    translation reads a field the text does not, and a `.mo` older than its `.po` (not compiled
    since the last change: workers would not see it)."""
    found: list[Untranslated] = []
    for group, locale, path, catalog in _catalogues(flows):
        flow = group[-1]
        if _translations(catalog) != _compiled(path.with_suffix(".mo")):
            found.append(Untranslated(locale, flow.name, "*", "catalogue", path.name, "not compiled since it changed"))
        seen: set[tuple[str, str]] = set()
        for member in group:
            for text in texts(member):
                if (text.msgid, text.step) in seen:
                    continue
                seen.add((text.msgid, text.step))
                message = catalog.get(text.msgid)
                string_ = message.string if message is not None else ""
                if not string_ or not isinstance(string_, str) or (message is not None and message.fuzzy):
                    found.append(Untranslated(locale, member.name, text.step, text.what, text.msgid))
                elif extra := fields(string_) - fields(text.msgid):
                    found.append(
                        Untranslated(
                            locale,
                            member.name,
                            text.step,
                            text.what,
                            text.msgid,
                            f"translated with {', '.join(sorted(extra))}, which the text does not read",
                        )
                    )
    return found
