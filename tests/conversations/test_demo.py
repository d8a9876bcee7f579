from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow import hours
from chatflow.testing import FlowTest
from conversations.demo import Demo


async def test_any_first_message_gets_greeting_and_menu(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Demo) as chat:
        replies = await chat.send("hello")
        assert len(replies) == 2  # the first message starts the flow; it answers nothing
        assert replies[0] == "Hi! I'm the chatflow demo bot."
        assert replies[1].splitlines() == [
            "What can I do for you?",
            "",
            "1. Opening hours",
            "2. Track my order",
            "3. Talk to a person",
        ]
        assert await chat.send("1") == [
            "We're open 9:00-18:00, Monday to Saturday.",
            replies[1],
        ]
        assert await chat.send("track my order") == ["What's your order number?"]
        assert (await chat.send("A-1234"))[0] == "Order A-1234 is on its way and arrives tomorrow."
        assert await chat.send("bye") == ["Bye! Text us any time."]
        result = await chat.result()
        assert result.outcome == "completed"
        assert result.data["order"] == "A-1234"


async def test_talk_to_a_person_hands_the_conversation_to_an_operator_and_back(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with FlowTest(skipping_env, Demo) as chat:
        menu = (await chat.send("hi"))[1]
        assert await chat.send("3") == ["Connecting you with a person..."]
        await chat.take_over("ana")
        await chat.operator_says("Hi, Ana here. How can I help?", operator="ana")
        assert await chat.hand_back("ana") == ["Hi, Ana here. How can I help?", "You're back with the demo bot.", menu]
        assert await chat.send("bye") == ["Bye! Text us any time."]
        assert (await chat.result()).outcome == "completed"


async def test_when_nobody_takes_over_within_an_hour_the_customer_is_told(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Demo) as chat:
        await chat.send("hi")
        assert await chat.send("3") == ["Connecting you with a person..."]
        await chat.skip(hours(1))
        assert chat.said[-1] == "Sorry, nobody is free right now. A person will text you back shortly."
        assert (await chat.result()).outcome == "completed"


async def test_a_journey_with_locale_es_speaks_spanish_through_the_app_and_the_console(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    """As shipped: the journeys API starts the demo with data {"locale": "es"}, the worker runs it
    on its Spanish catalogue, and the console channel's transcript (what the customer reads) is
    in Spanish; the customer's reply by the Spanish title picks the choice."""
    import httpx

    from chatflow.domain.addresses import Address
    from chatflow.domain.config import Config, NumberBinding, Settings
    from tests.helpers import new_customer, running_app, running_worker, started_services

    number = "+15005550006"
    config = Config(
        numbers=[NumberBinding(address=Address("tel", number), provider="console", channel="console", flow="demo")],
        flow_modules=["conversations.demo"],
        settings=Settings(api_key="k"),
    )
    customer = new_customer()
    texts: list[str] = []
    cursor = "0"

    async def read_until(http: httpx.AsyncClient, last: str) -> list[str]:
        nonlocal cursor
        while not texts or last not in texts[-1]:
            page = (
                await http.get("/console/messages", params={"customer": customer, "after": cursor, "wait": 20})
            ).json()
            assert page["messages"], f"no reply; so far {texts}"
            texts.extend(m["text"] for m in page["messages"])
            cursor = page["next"]
        return texts

    async with started_services(config, [Demo], client=dev_env.client, redis=redis) as services:
        async with running_worker(services), running_app(services) as http:
            http.headers["authorization"] = "Bearer k"
            started = await http.post(
                "/api/conversations", json={"flow": "demo", "to": customer, "from": number, "data": {"locale": "es"}}
            )
            assert started.status_code == 202, started.text
            said = await read_until(http, "¿En qué puedo ayudarte?")
            assert said[0] == "¡Hola! Soy el bot de demostración de chatflow."
            sent = await http.post("/console/messages", json={"from": customer, "to": number, "text": "Horario"})
            assert sent.status_code == 202, sent.text
            said = await read_until(http, "Abrimos de 9:00 a 18:00, de lunes a sábado.")
    menu = "¿En qué puedo ayudarte?\n\n1. Horario\n2. Seguir mi pedido\n3. Hablar con una persona"
    assert said[:3] == [
        "¡Hola! Soy el bot de demostración de chatflow.",
        menu,
        "Abrimos de 9:00 a 18:00, de lunes a sábado.",
    ]
