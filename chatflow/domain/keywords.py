"""Words the edge answers itself, before any flow sees the message, on every number.

Carriers and Meta expect STOP and its synonyms to unsubscribe and HELP to answer, whatever flow
runs; a flow that branched on one of them would never see it, so flows may not (`chatflow.flows`
checks it against the English words when the flow class is defined).

Each number answers the words of the languages its binding names (`keyword_languages = ["en",
"es"]` on a [[numbers]] entry; English alone by default), and answers in the language of the word
the customer used: `BAJA` on a number configured for Spanish unsubscribes and is confirmed in
Spanish. Accents and case do not count (`arrêt` is `ARRET`).

The answers are written in English here and translated in gettext catalogues beside this module,
`locales/<language>/LC_MESSAGES/keywords.po` (compiled to `.mo`, read with the standard library's
gettext when this module is imported): the same catalogues and tools as the flows' texts.
"""

from __future__ import annotations

import gettext
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Meaning = Literal["opt_out", "opt_in", "help"]


@dataclass(frozen=True)
class Language:
    """The opt-out, opt-in and help words of one language, and the answers to them."""

    code: str
    opt_out: frozenset[str]
    opt_in: frozenset[str]
    help: frozenset[str]
    opted_out_text: str
    opted_in_text: str
    help_text: str

    def meaning(self, word: str) -> Meaning | None:
        if word in self.opt_out:
            return "opt_out"
        if word in self.opt_in:
            return "opt_in"
        if word in self.help:
            return "help"
        return None

    def answer(self, meaning: Meaning) -> str:
        return {"opt_out": self.opted_out_text, "opt_in": self.opted_in_text, "help": self.help_text}[meaning]


# The answers as written (the catalogues' message ids), and where their translations are.
OPTED_OUT = "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
OPTED_IN = "You have been resubscribed. Reply STOP to unsubscribe."
HELP = "Reply STOP to unsubscribe, START to resubscribe."
ANSWERS = (OPTED_OUT, OPTED_IN, HELP)
# What the customer is asked when a reply of theirs fits several of their conversations on a
# number (`chatflow.edge.beside`), the conversations numbered after it.
WHICH = "Which conversation is your reply for? Reply with its number:"
TEXTS = (*ANSWERS, WHICH)
LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "keywords"


def answers(code: str) -> dict[str, str]:
    """The three answers in language `code`, from its catalogue (English where it has none)."""
    translation = gettext.translation(DOMAIN, LOCALES, languages=[code], fallback=True)
    opted_out, opted_in, help_ = (translation.gettext(text) for text in ANSWERS)
    return {"opted_out_text": opted_out, "opted_in_text": opted_in, "help_text": help_}


def which_question(locale: str, titles: list[str]) -> str:
    """The question which conversation a reply is for, in `locale`'s language where the
    catalogues translate it (English otherwise), each conversation's title numbered from 1."""
    code = locale.replace("-", "_").split("_")[0].lower()
    translation = gettext.translation(DOMAIN, LOCALES, languages=[code], fallback=True)
    lines = [translation.gettext(WHICH), *(f"{number}. {title}" for number, title in enumerate(titles, start=1))]
    return "\n".join(lines)


ENGLISH = Language(
    "en",
    opt_out=frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "OPTOUT", "REVOKE"}),
    opt_in=frozenset({"START", "UNSTOP"}),
    help=frozenset({"HELP", "INFO"}),
    opted_out_text=OPTED_OUT,
    opted_in_text=OPTED_IN,
    help_text=HELP,
)
SPANISH = Language(
    "es",
    opt_out=frozenset({"BAJA", "PARAR", "DETENER", "CANCELAR", "DESUSCRIBIR", "ALTO"}),
    opt_in=frozenset({"ALTA", "REANUDAR", "COMENZAR"}),
    help=frozenset({"AYUDA"}),
    **answers("es"),
)
PORTUGUESE = Language(
    "pt",
    opt_out=frozenset({"SAIR", "PARAR", "CANCELAR", "DESCADASTRAR", "REMOVER"}),
    opt_in=frozenset({"VOLTAR", "RETOMAR"}),
    help=frozenset({"AJUDA"}),
    **answers("pt"),
)
FRENCH = Language(
    "fr",
    # STOP is how French carriers' short codes are unsubscribed from, in French too.
    opt_out=frozenset({"STOP", "ARRET", "DESABONNER", "DESINSCRIRE"}),
    opt_in=frozenset({"REPRENDRE", "ABONNER"}),
    help=frozenset({"AIDE"}),
    **answers("fr"),
)

LANGUAGES: dict[str, Language] = {language.code: language for language in (ENGLISH, SPANISH, PORTUGUESE, FRENCH)}
DEFAULT_LANGUAGES = ("en",)

OPT_OUT_WORDS = ENGLISH.opt_out
OPT_IN_WORDS = ENGLISH.opt_in
HELP_WORDS = ENGLISH.help
RESERVED_WORDS = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS


def command(text: str) -> str:
    """The whole message as a keyword: case, accents and surrounding spaces and punctuation do
    not count."""
    folded = unicodedata.normalize("NFKD", text.strip().strip(".!¡¿?").strip())
    return "".join(char for char in folded if not unicodedata.combining(char)).upper()


@dataclass(frozen=True)
class Keywords:
    """The words one number answers itself: those of its languages, the first language naming a
    word deciding what it means and in which language it is answered."""

    languages: tuple[Language, ...] = (ENGLISH,)

    @classmethod
    def of(cls, codes: Iterable[str]) -> Keywords:
        """The keywords of the languages `codes` names; ValueError naming one that is not known."""
        chosen = []
        for code in codes:
            if code not in LANGUAGES:
                raise ValueError(f"keyword language {code!r} is not one of {', '.join(LANGUAGES)}")
            chosen.append(LANGUAGES[code])
        if not chosen:
            raise ValueError(f"keyword_languages needs at least one of {', '.join(LANGUAGES)}")
        return cls(tuple(chosen))

    def meaning(self, text: str) -> tuple[Meaning, Language] | None:
        """What the message means as a keyword, and the language it is in; None when it is none."""
        word = command(text)
        for language in self.languages:
            meaning = language.meaning(word)
            if meaning is not None:
                return meaning, language
        return None

    @property
    def reserved(self) -> frozenset[str]:
        """Every word this number answers itself (no keyword trigger may use one)."""
        return frozenset().union(*(lang.opt_out | lang.opt_in | lang.help for lang in self.languages))
