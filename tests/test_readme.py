"""The README's flow and test examples run as written (tests/test_tutorial.py runs them as a
user's own project would, outside this repository)."""

import inspect
import re
import sys
import types
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    return README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def blocks(title: str, language: str = "python") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(title), re.S)


def python_blocks(title: str) -> str:
    return "\n".join(blocks(title))


async def test_readme_first_flow_and_its_test_pass(flow_test):
    # The test imports the flow from `reminders`, as the README's layout has it.
    reminders = types.ModuleType("reminders")
    sys.modules["reminders"] = reminders
    try:
        exec(python_blocks("Write your first flow"), reminders.__dict__)
        tests = types.ModuleType("test_reminders")
        exec(python_blocks("Test a flow"), tests.__dict__)
        found = [f for name, f in vars(tests).items() if name.startswith("test_") and inspect.iscoroutinefunction(f)]
        assert found
        for test in found:
            assert list(inspect.signature(test).parameters) == ["flow_test"]
            await test(flow_test)
    finally:
        del sys.modules["reminders"]


def test_the_first_flows_config_names_its_module():
    (config,) = blocks("Write your first flow", "toml")
    assert config == '[flows]\nmodules = ["reminders"]\n'


async def test_readme_handover_flow_waits_for_a_person(flow_test):
    support = types.ModuleType("support")
    exec(python_blocks("Dashboard"), support.__dict__)
    chat = await flow_test(support.Support)
    assert await chat.send("my parcel never came") == ["Connecting you with a person..."]
    await chat.take_over("ana")
    await chat.operator_says("Sorry! A new one is on its way.", operator="ana")
    assert await chat.hand_back("ana") == ["Sorry! A new one is on its way.", "Glad we could help!"]


def settings_tables() -> str:
    """The README's tables of settings: chatflow's own, then each channel's."""
    start = README.index("| setting | what it does |")
    end = README.index("\n\n", README.index("| provider | setting | what it does |"))
    return README[start:end]


def test_the_settings_tables_name_every_setting_the_code_reads():
    import providers

    code = Path(__file__).parents[1]
    read = {
        name
        for folder in ("chatflow", "providers")
        for path in (code / folder).rglob("*.py")
        for name in re.findall(r"[\"'](CHATFLOW_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8"))
    }
    read |= {name for spec in providers.CHANNELS for name in spec.environment}
    assert {"CHATFLOW_CALLBACK_URL", "CHATFLOW_CALLBACK_SECRET", "CHATFLOW_WHATSAPP_API_VERSION"} <= read
    shown = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", settings_tables()))
    assert sorted(read - shown) == []


def test_each_channels_row_names_exactly_the_settings_it_reads():
    import providers

    rows = re.findall(r"^\| `(\w+)` \| (.*?) \|", settings_tables(), re.M)
    for spec in providers.CHANNELS:
        named = {
            name
            for channel, cells in rows
            if channel == spec.name
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells)
        }
        assert named == set(spec.environment), spec.name
