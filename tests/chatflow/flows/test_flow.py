import pytest

from chatflow import Ask, Convo, End, Flow, FlowDefinitionError, Http, If, Say, hours, secret, yes
from chatflow.flows.steps import Code, Step


def test_steps_run_in_declaration_order_and_end_states_exist() -> None:
    class Greeting(Flow):
        hello = Say("hello")
        bye = Say("bye")
        done = End()

    assert Greeting.name == "greeting"
    assert Greeting.first_step() == "hello"
    assert Greeting.next_step("hello", "next") == "bye"
    assert Greeting.next_step("bye", "next") == "done"
    assert {"completed", "cancelled", "expired", "failed"} <= set(Greeting.steps)


def test_falling_off_the_end_completes_the_conversation() -> None:
    class Notice(Flow):
        check = If(lambda data: data["vip"], then="vip")
        regular = Say("Your order shipped.", then="completed")
        vip = Say("Your order shipped first class.")

    assert Notice.next_step("check", "otherwise") == "regular"
    assert Notice.next_step("vip", "next") == "completed"


def test_the_transition_table_is_a_transitions_machine() -> None:
    class Confirm(Flow):
        ask = Ask("OK?", branches={yes: "ok"}, timeout=hours(1), on_timeout="late")
        ok = End()
        late = End("expired")

    triggers = {t for t in Confirm.table.get_triggers("ask")}
    assert triggers == {"reply:yes", "timeout"}
    assert Confirm.next_step("ask", "timeout") == "late"


def test_code_steps_may_go_to_the_steps_their_source_names() -> None:
    class Route(Flow):
        async def decide(self, convo: Convo) -> Step | str:
            return self.power if convo.data.get("tier") == "power" else "regular"

        power = End()
        regular = End()

    decide = Route.steps["decide"]
    assert isinstance(decide, Code)
    assert decide.targets == ["power", "regular"]
    assert Route.next_step("decide", "goto:regular") == "regular"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"a": Say("x", then="nowhere")}, "leads to unknown step 'nowhere'"),
        ({"a": Ask("x", branches={yes: "b"}, timeout=hours(1)), "b": End()}, "has a timeout but no on_timeout"),
        ({"a": Ask("x"), "b": End()}, "has no branches, choices or events"),
        ({"on_failure": "oops", "a": End()}, "on_failure='oops' is not a step"),
    ],
)
def test_mistakes_are_reported_when_the_flow_is_defined(body: dict[str, object], message: str) -> None:
    with pytest.raises(FlowDefinitionError, match=message.replace("(", r"\(").replace("=", "=")):
        type("Broken", (Flow,), body)


def test_http_methods_are_checked() -> None:
    with pytest.raises(ValueError, match="unsupported HTTP method"):
        Http("FETCH", "https://example.com")


def test_a_secret_in_an_http_body_is_refused_where_it_is_written() -> None:
    with pytest.raises(FlowDefinitionError, match="headers or params, not in its json body"):
        Http("POST", "https://shop.example.com/api/orders", json={"key": [secret("SHOP_KEY")]})
