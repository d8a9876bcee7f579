"""The `chatflow` command as a user runs it: a subprocess, its output and exit status."""

import subprocess
from pathlib import Path

import pytest

from tests.chatflow.runtime.devstack import DEMO_CONFIG, chatflow_command, chatflow_env


def run(tmp_path: Path, *args: str, config: str = DEMO_CONFIG, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "chatflow.toml").write_text(config)
    return subprocess.run(
        chatflow_command(*args), capture_output=True, text=True, cwd=tmp_path, env=chatflow_env(**env), timeout=60
    )


def test_flows_lists_name_version_steps_and_description(tmp_path: Path) -> None:
    done = run(tmp_path, "flows")
    assert done.returncode == 0, done.stderr
    header, demo = done.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "STEPS", "DESCRIPTION"]
    assert demo.split()[:3] == ["demo", "1", "11"]
    assert demo.endswith("A small shop assistant: opening hours, order status, or a human.")


def test_graph_writes_mermaid_to_stdout_and_svg_to_a_file(tmp_path: Path) -> None:
    done = run(tmp_path, "graph", "demo")
    assert done.returncode == 0 and done.stdout.startswith("stateDiagram-v2\n")
    done = run(tmp_path, "graph", "demo", "--format", "svg", "-o", "demo.svg")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "demo.svg").read_text().startswith("<svg")


BOUND = """
[flows]
modules = ["conversations.demo"]

[[numbers]]
number = "{number}"
provider = "{provider}"
flow = "{flow}"
"""


@pytest.mark.parametrize(
    ("command", "config", "says"),
    [
        (["graph", "nope"], DEMO_CONFIG, "error: unknown flow 'nope' (known flows: demo)"),
        (["graph", "demo", "--format", "gif"], DEMO_CONFIG, "error: unknown format 'gif'"),
        (["worker"], BOUND.format(number="+15005550006", provider="console", flow="nope"),
         "error: chatflow.toml: +15005550006 is bound to unknown flow 'nope'"),
        (["web"], BOUND.format(number="5550006", provider="console", flow="demo"),
         "error: chatflow.toml: [[numbers]] entry 1: number '5550006' is not an E.164 phone number"),
        (["dev"], BOUND.format(number="+15005550006", provider="twilio", flow="demo"),
         "error: chatflow.toml binds numbers whose provider needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"),
        (["flows"], '[flows]\nmodules = ["conversations.nope"]\n', "error: chatflow.toml: [flows] module 'conversations.nope' not found"),
        (["flows", "--config", "missing.toml"], DEMO_CONFIG, "error: config file missing.toml not found"),
    ],
)
def test_mistakes_are_one_clear_line_and_exit_2(tmp_path: Path, command: list[str], config: str, says: str) -> None:
    done = run(tmp_path, *command, config=config)
    assert done.returncode == 2
    assert done.stderr.startswith(says), done.stderr
    assert "Traceback" not in done.stderr
