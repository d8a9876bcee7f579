"""The README's flow and test examples run as written (tests/test_tutorial.py runs them as a
user's own project would, outside this repository), and its test command is CI's."""

import inspect
import sys
import types
from pathlib import Path

from chatflow.testing import OpenFlowTest
from tests.test_docs import page, snippet

README = page("README.md")


async def test_readme_first_flow_and_its_test_pass(flow_test: OpenFlowTest) -> None:
    # The test imports the flow from `reminders`, as the README's layout has it.
    reminders = types.ModuleType("reminders")
    sys.modules["reminders"] = reminders
    try:
        exec(snippet("first-flow"), reminders.__dict__)
        tests = types.ModuleType("test_reminders")
        exec(snippet("first-test"), tests.__dict__)
        found = [f for name, f in vars(tests).items() if name.startswith("test_") and inspect.iscoroutinefunction(f)]
        assert found
        for test in found:
            assert list(inspect.signature(test).parameters) == ["flow_test"]
            await test(flow_test)
    finally:
        del sys.modules["reminders"]


def test_the_first_flows_config_names_its_module() -> None:
    assert snippet("first-flow-config") == '[flows]\nmodules = ["reminders"]\n'


def test_the_quick_starts_test_command_is_what_ci_runs() -> None:
    # .ci/run ends with the command, as written: CI runs it on every change.
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    command = [line for line in snippet("quick-start-test").splitlines() if not line.startswith("#")]
    assert command == ["python -m pip install -e '.[dev]' && python -m pytest"]
    assert ci.rstrip("\n").splitlines()[-1] == command[0]


async def test_the_handover_flow_waits_for_a_person(flow_test: OpenFlowTest) -> None:
    support = types.ModuleType("support")
    exec(snippet("handover-flow"), support.__dict__)
    chat = await flow_test(support.Support)
    assert await chat.send("my parcel never came") == ["Connecting you with a person..."]
    await chat.take_over("ana")
    await chat.operator_says("Sorry! A new one is on its way.", operator="ana")
    assert await chat.hand_back("ana") == ["Sorry! A new one is on its way.", "Glad we could help!"]
