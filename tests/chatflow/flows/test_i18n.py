"""Flows in the customer's language: catalogues through Babel, the customer's locale, the language
question, templates per language, dates and amounts written the locale's way, and what is left
untranslated."""

from pathlib import Path

import babel.localedata
import pytest
from babel.messages import pofile
from temporalio.testing import WorkflowEnvironment

from chatflow import Ask, AskLanguage, Choice, End, Flow, Say, Template, anything
from chatflow.domain.errors import TemplateError
from chatflow.flows import i18n
from chatflow.flows.templating import render
from chatflow.testing import FlowTest, MemoryFlowTest
from conversations.demo import Demo


def order_flow(locales: Path) -> type[Flow]:
    class Order(Flow):
        name = "order_i18n"
        greet = Say("Your order {order} costs {amount:currency:EUR}, due {due:date:long}.")
        menu = Ask(
            "Anything else?",
            choices=[Choice("Yes please", "more"), Choice("No thanks", "bye")],
            reprompt="Reply 1 or 2.",
            template=Template("anything_else", language="en", languages=["es", "pt_BR"]),
        )
        more = Say("Coming up.", then="bye")
        bye = End("completed", "Goodbye!")

    Order.locales = str(locales)
    return Order


SPANISH = {
    "Your order {order} costs {amount:currency:EUR}, due {due:date:long}.": (
        "Tu pedido {order} cuesta {amount:currency:EUR}, vence el {due:date:long}."
    ),
    "Anything else?": "¿Algo más?",
    "Reply 1 or 2.": "Responde 1 o 2.",
    "Yes please": "Sí, por favor",
    "No thanks": "No, gracias",
    "Coming up.": "Enseguida.",
    "Goodbye!": "¡Adiós!",
}


def translate(flow: type[Flow], locale: str, translations: dict[str, str]) -> None:
    """A catalogue for `locale` as a translator leaves it: `update`, fill in, `compile`."""
    i18n.update([flow], [locale])
    path = i18n.po_path(flow, locale)
    with path.open("rb") as file:
        catalog = pofile.read_po(file, locale=locale)
    for message in catalog:
        if message.id in translations:
            message.string = translations[message.id]
    with path.open("wb") as file:
        pofile.write_po(file, catalog)
    i18n.compile_catalogues([flow])
    i18n.load(flow)


DATA = {"order": "A-7", "amount": "12.5", "due": "2026-03-04"}


# -- formatting -----------------------------------------------------------------------------


def test_dates_numbers_and_amounts_are_written_the_locales_way() -> None:
    text = "{amount:currency:EUR} | {due:date:long} | {due:date} | {n:number} | {p:percent} | {amount:currency:{cur}}"
    data = {"amount": "12.5", "due": "2026-03-04", "n": 1234567.5, "p": "0.25", "cur": "USD"}
    assert render(text, data, "en") == "€12.50 | March 4, 2026 | Mar 4, 2026 | 1,234,567.5 | 25% | $12.50"
    assert (
        render(text, data, "es")
        == "12,50\xa0€ | 4 de marzo de 2026 | 4 mar 2026 | 1.234.567,5 | 25\xa0% | 12,50\xa0US$"
    )
    assert render("{due:date:d MMMM}", data, "es") == "4 marzo"  # a CLDR pattern


def test_times_are_in_the_customers_time_zone_never_the_machines() -> None:
    at = {"at": "2026-03-04T15:30:00+00:00"}
    assert render("{at:time}", {**at, "timezone": "Europe/Madrid"}, "es") == "16:30"
    assert render("{at:time}", at, "es") == "15:30"
    assert render("{at:datetime:short}", {**at, "timezone": "America/New_York"}, "es") == "4/3/26, 10:30"


def test_a_value_that_is_no_date_or_an_amount_without_currency_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="'due' as a date or time"):
        render("{due:date}", {"due": "next week"}, "es")
    with pytest.raises(TemplateError, match="names none"):
        render("{amount:currency}", {"amount": "1"}, "es")
    with pytest.raises(TemplateError, match="as a number"):
        render("{n:number}", {"n": "many"}, "en")


def test_texts_without_locale_specs_render_as_before() -> None:
    assert render("Hi {name}, {n:>3}|{x!r}", {"name": "Ana", "n": 7, "x": "y"}) == "Hi Ana,   7|'y'"


# -- the customer's locale ------------------------------------------------------------------


def test_the_locale_is_the_journeys_else_the_numbers_countrys_else_the_flows() -> None:
    assert i18n.customer_locale(Demo, {"locale": "es-mx"}, "+14155550100") == "es_MX"
    assert i18n.customer_locale(Demo, {}, "+34911234567") == "es"
    assert i18n.customer_locale(Demo, {}, "whatsapp:+5511987654321") == "pt"
    assert i18n.customer_locale(Demo, {}, "+14155550100") == "en"
    assert i18n.customer_locale(Demo, {}, "mailto:ana@example.com") == "en"


def test_a_catalogue_answers_for_a_regional_locale_and_falls_back_to_the_text() -> None:
    catalogues = i18n.Catalogues("en", {"es": {"Hi": "Hola"}, "pt_BR": {"Hi": "Oi"}})
    assert catalogues.gettext("Hi", "es_MX") == "Hola"
    assert catalogues.gettext("Hi", "pt") == "Oi"  # another region of the language
    assert catalogues.gettext("Bye", "es") == "Bye"
    assert catalogues.gettext("Hi", "fr") == "Hi"


def test_templates_go_in_the_customers_language_when_approved_in_it() -> None:
    template = Template("goodbye", language="en_US", languages=["es", "pt_BR"], body=["{amount:currency:EUR}"])
    assert template.render({"amount": "3"}, "es_MX").language == "es"
    assert template.render({"amount": "3"}, "pt").language == "pt_BR"
    assert template.render({"amount": "3"}, "fr").language == "en_US"
    assert template.render({"amount": "3"}).language == "en_US"
    assert template.render({"amount": "3"}, "es").body[0].text == "3,00\xa0€"


def test_a_twilio_content_sid_is_the_templates_language_only() -> None:
    template = Template("pay_now", language="en", languages=["es"], content_sid="HX" + "1" * 32)
    assert template.render({}, "en").content_sid == "HX" + "1" * 32
    spanish = template.render({}, "es")
    # Twilio finds the Spanish content by name and language.
    assert (spanish.language, spanish.content_sid) == ("es", "")


# -- flows in conversations: the engine in memory, and the worker on Temporal --------------------


async def test_the_demo_speaks_spanish_to_a_journey_with_locale_es() -> None:
    async with MemoryFlowTest(Demo) as chat:
        said = await chat.start({"locale": "es"})
        assert said[0] == "¡Hola! Soy el bot de demostración de chatflow."
        assert said[1].splitlines() == [
            "¿En qué puedo ayudarte?",
            "",
            "1. Horario",
            "2. Seguir mi pedido",
            "3. Hablar con una persona",
        ]
        # The title as the customer was shown it picks the choice.
        assert (await chat.send("horario"))[0] == "Abrimos de 9:00 a 18:00, de lunes a sábado."
        assert await chat.send("2") == ["¿Cuál es tu número de pedido?"]
        assert (await chat.send("A-1234"))[0] == "El pedido A-1234 está en camino y llega mañana."
        reprompt = await chat.send("qué?")
        assert reprompt[0].splitlines()[0] == "Perdona, no te he entendido. Responde 1, 2 o 3."
        assert await chat.send("adiós") == ["¡Adiós! Escríbenos cuando quieras."]
        result = await chat.result()
    assert result.data["locale"] == "es"


async def test_a_spanish_number_gets_spanish_and_a_locale_without_catalogue_the_flows_language() -> None:
    async with MemoryFlowTest(Demo, customer="+34911234567") as chat:
        assert (await chat.send("hola"))[0] == "¡Hola! Soy el bot de demostración de chatflow."
    async with MemoryFlowTest(Demo) as chat:
        assert (await chat.start({"locale": "fr"}))[0] == "Hi! I'm the chatflow demo bot."


async def test_a_flow_without_catalogues_records_no_locale() -> None:
    class Plain(Flow):
        hi = Say("Hi, {due:date:long}")

    async with MemoryFlowTest(Plain, customer="+34911234567") as chat:
        assert await chat.start({"due": "2026-03-04"}) == ["Hi, March 4, 2026"]
        result = await chat.result()
    assert "locale" not in result.data


async def test_asking_the_language_switches_the_conversation_to_it(tmp_path: Path) -> None:
    class Polyglot(Flow):
        language_question = AskLanguage("Which language? / ¿Qué idioma?", languages=["en", "es"])
        menu = Ask("Anything else?", branches={anything: "done"}, template=Template("more", languages=["es"]))
        done = End("completed", "Goodbye!")

    Polyglot.locales = str(tmp_path)
    translate(Polyglot, "es", SPANISH)
    async with MemoryFlowTest(Polyglot) as chat:
        assert (await chat.start())[0].splitlines() == [
            "Which language? / ¿Qué idioma?",
            "",
            "1. English",
            "2. Español",
        ]
        assert await chat.send("Español") == ["¿Algo más?"]
        assert await chat.send("nada") == ["¡Adiós!"]
        result = await chat.result()
    assert result.data["locale"] == "es"


async def test_choices_reprompts_and_formats_follow_the_catalogue(tmp_path: Path) -> None:
    flow = order_flow(tmp_path)
    translate(flow, "es", SPANISH)
    async with MemoryFlowTest(flow) as chat:
        said = await chat.start({**DATA, "locale": "es"})
        assert said[0] == "Tu pedido A-7 cuesta 12,50\xa0€, vence el 4 de marzo de 2026."
        assert said[1].splitlines() == ["¿Algo más?", "", "1. Sí, por favor", "2. No, gracias"]
        assert await chat.send("hmm") == ["Responde 1 o 2.\n\n1. Sí, por favor\n2. No, gracias"]
        assert await chat.send("no, gracias") == ["¡Adiós!"]


async def test_the_worker_reads_babels_data_for_its_flows_languages_outside_the_sandbox(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Temporal's sandbox refuses a workflow that opens a file: Babel's data for the languages a
    flow speaks is read as the worker deploys it, not when a conversation first formats a date."""
    flow = order_flow(tmp_path)
    translate(flow, "es", SPANISH)
    babel.localedata._cache.clear()  # as in a worker process that never formatted anything yet
    async with FlowTest(skipping_env, flow) as chat:
        said = await chat.start({**DATA, "locale": "es_MX", "timezone": "Europe/Madrid"})
    assert said[0] == "Tu pedido A-7 cuesta 12,50\xa0€, vence el 4 de marzo de 2026."

    class Spanish(Flow):
        language = "es"  # written in Spanish, no catalogues
        hi = Say("Te llamamos a las {at:time} por {amount:currency:EUR}.")

    babel.localedata._cache.clear()
    async with FlowTest(skipping_env, Spanish) as chat:
        said = await chat.start({"at": "2026-03-04T15:30:00+00:00", "amount": 3, "timezone": "Europe/Madrid"})
    assert said == ["Te llamamos a las 16:30 por 3,00\xa0€."]


# -- catalogues: extract, update, compile, check ----------------------------------------------


def test_extract_lists_each_text_once_with_the_steps_that_send_it(tmp_path: Path) -> None:
    flow = order_flow(tmp_path)
    (path,) = i18n.extract([flow])
    assert path == tmp_path / "order_i18n.pot"
    with path.open("rb") as file:
        catalog = pofile.read_po(file)
    ids = [message.id for message in catalog if message.id]
    assert ids == list(SPANISH)
    greet = catalog.get(next(iter(SPANISH)))
    assert greet is not None
    # babel types a location's line as int; read back from a .po file without one, it is None.
    assert greet.locations == [("order_i18n.greet", None)]  # type: ignore[comparison-overlap]
    assert "python-brace-format" in greet.flags
    assert catalog.get("Yes please").auto_comments == ["Choice title"]  # type: ignore[union-attr]


def test_a_missing_translation_is_reported_with_locale_flow_and_step(tmp_path: Path) -> None:
    flow = order_flow(tmp_path)
    translate(flow, "es", {k: v for k, v in SPANISH.items() if k != "Reply 1 or 2."})
    assert [str(item) for item in i18n.untranslated([flow])] == [
        "es: order_i18n.menu (Ask reprompt) untranslated: 'Reply 1 or 2.'"
    ]
    # ...and goes in the flow's language meanwhile.
    assert i18n.catalogues(flow).gettext("Reply 1 or 2.", "es") == "Reply 1 or 2."


def test_a_translation_reading_other_data_and_an_uncompiled_change_are_reported(tmp_path: Path) -> None:
    flow = order_flow(tmp_path)
    translate(flow, "es", {**SPANISH, "Goodbye!": "¡Adiós, {name}!"})
    path = i18n.po_path(flow, "es")
    path.write_text(path.read_text().replace("Enseguida.", "Ahora mismo."))
    assert [str(item) for item in i18n.untranslated([flow])] == [
        "es: order_i18n.* (catalogue) not compiled since it changed: 'order_i18n.po'",
        "es: order_i18n.bye (End text) translated with name, which the text does not read: 'Goodbye!'",
    ]


def test_update_keeps_translations_and_takes_in_new_texts(tmp_path: Path) -> None:
    flow = order_flow(tmp_path)
    translate(flow, "es", SPANISH)

    class Order(flow):  # type: ignore[valid-type,misc]
        name = "order_i18n"
        version = 2
        more = Say("Coming up, {order}.", then="bye")

    Order.locales = str(tmp_path)
    i18n.update([flow, Order])
    with i18n.po_path(Order, "es").open("rb") as file:
        catalog = pofile.read_po(file)
    assert catalog.get("Anything else?").string == "¿Algo más?"  # type: ignore[union-attr]
    assert catalog.get("Coming up, {order}.") is not None
    assert [str(item) for item in i18n.untranslated([flow, Order])][-1] == (
        "es: order_i18n.more (Say text) untranslated: 'Coming up, {order}.'"
    )


def test_the_shipped_demo_is_translated_into_spanish_entirely() -> None:
    assert i18n.untranslated([Demo]) == []
    assert i18n.catalogue_locales(Demo) == ["es"]
    assert len(i18n.catalogues(Demo).translations["es"]) == len(i18n.texts(Demo))


def test_ask_language_offers_each_language_in_its_own_name() -> None:
    step = AskLanguage(languages=["en", "es", "fr", "pt-BR"])
    assert [option.title for option in step.choices.options()] == [
        "English",
        "Español",
        "Français",
        "Português (Brasil)",
    ]
    with pytest.raises(ValueError, match="at least two"):
        AskLanguage(languages=["en"])


async def test_the_documented_flow_asks_the_language_and_writes_the_amount_and_date_its_way(tmp_path: Path) -> None:
    from tests.test_docs import snippet

    namespace: dict[str, object] = {"__name__": "invoice_flows"}
    exec(snippet("i18n-flow"), namespace)
    invoice = namespace["Invoice"]
    assert isinstance(invoice, type) and issubclass(invoice, Flow)
    invoice.locales = str(tmp_path)
    translate(
        invoice,
        "es",
        {
            "Which language do you prefer?": "¿Qué idioma prefieres?",
            "Invoice {invoice} for {amount:currency:EUR} is due on {due:date:long}.": (
                "La factura {invoice} de {amount:currency:EUR} vence el {due:date:long}."
            ),
            "Did that help?": "¿Te ha servido?",
            "Thank you!": "¡Gracias!",
        },
    )
    data = {"invoice": "F-1", "amount": "12.5", "due": "2026-03-04"}
    async with MemoryFlowTest(invoice) as chat:
        assert (await chat.start(data))[0].splitlines() == [
            "Which language do you prefer?",
            "",
            "1. English",
            "2. Español",
            "3. Français",
        ]
        assert await chat.send("2") == ["La factura F-1 de 12,50\xa0€ vence el 4 de marzo de 2026.", "¿Te ha servido?"]
        assert await chat.send("sí") == ["¡Gracias!"]
    async with MemoryFlowTest(invoice) as chat:
        await chat.start(data)
        # French has no catalogue: the flow's language, its way of writing amounts and dates.
        assert await chat.send("Français") == ["Invoice F-1 for €12.50 is due on March 4, 2026.", "Did that help?"]
