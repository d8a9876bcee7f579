"""STOP, START and HELP answers come from gettext catalogues beside chatflow/domain/keywords.py,
one per language whose words a number may answer."""

import pytest
from babel.messages import mofile, pofile

from chatflow.domain import keywords
from chatflow.domain.keywords import ANSWERS, ENGLISH, LANGUAGES, LOCALES, TEXTS, WHICH, answers, which_question


@pytest.mark.parametrize("code", [code for code in LANGUAGES if code != "en"])
def test_every_language_answers_in_its_own_words_from_its_compiled_catalogue(code: str) -> None:
    po = LOCALES / code / "LC_MESSAGES" / "keywords.po"
    with po.open("rb") as file:
        source = {m.id: m.string for m in pofile.read_po(file) if m.id and m.string and not m.fuzzy}
    with po.with_suffix(".mo").open("rb") as file:
        compiled = {m.id: m.string for m in mofile.read_mo(file) if m.id}
    assert compiled == source, "keywords.po changed since it was compiled (pybabel compile, or babel's write_mo)"
    assert set(source) == set(TEXTS), f"{code} translates {sorted(source)}, not every answer"
    language = LANGUAGES[code]
    assert [language.opted_out_text, language.opted_in_text, language.help_text] == [source[t] for t in ANSWERS]
    # Each answer names the language's own words to write back.
    assert any(word in language.opted_out_text for word in language.opt_in)
    assert any(word in language.opted_in_text for word in language.opt_out)


def test_english_is_the_texts_as_written_and_a_language_without_catalogue_gets_them() -> None:
    assert [ENGLISH.opted_out_text, ENGLISH.opted_in_text, ENGLISH.help_text] == list(ANSWERS)
    assert answers("de") == {"opted_out_text": ANSWERS[0], "opted_in_text": ANSWERS[1], "help_text": ANSWERS[2]}
    assert keywords.SPANISH.answer("opt_out").startswith("Te has dado de baja")


def test_the_question_which_conversation_a_reply_is_for_is_numbered_in_the_customers_language() -> None:
    assert which_question("es_MX", ["pago", "encuesta"]) == (
        "¿A qué conversación responde tu mensaje? Responde con su número:\n1. pago\n2. encuesta"
    )
    assert which_question("de", ["a", "b"]) == f"{WHICH}\n1. a\n2. b"  # no German catalogue: English
