"""A misspelt key in chatflow.toml is reported with the nearest valid one, never ignored."""

import subprocess
import sys
from pathlib import Path

import pytest

from chatflow.domain.errors import ConfigError
from chatflow.runtime.config import parse_config

NUMBER = '[[numbers]]\nnumber = "+15005550006"\nprovider = "console"\nflow = "demo"\n'


@pytest.mark.parametrize(
    ("toml", "reported"),
    [
        ('[flow]\nmodules = ["conversations.demo"]\n', "unknown key 'flow'; did you mean 'flows'?"),
        ('[flows]\nmodule = ["conversations.demo"]\n', "unknown key 'module'; did you mean 'modules'?"),
        (NUMBER + 'flwo = "demo"\n', "entry 1: unknown key 'flwo'; did you mean 'flow'?"),
        (NUMBER + "keyword = { JOIN = 'demo' }\n", "unknown key 'keyword'; did you mean 'keywords'?"),
    ],
)
def test_a_misspelt_key_names_the_nearest_valid_one(toml: str, reported: str) -> None:
    with pytest.raises(ConfigError, match=reported.replace("?", r"\?")):
        parse_config(toml)


def test_a_flow_module_beside_the_config_is_found_without_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "my_flows.py").write_text(
        'from chatflow import End, Flow, Say\n\nclass Hello(Flow):\n    hi = Say("Hi")\n    done = End()\n'
    )
    (tmp_path / "chatflow.toml").write_text(
        '[flows]\nmodules = ["my_flows"]\n\n[[numbers]]\nnumber = "+15005550006"\nprovider = "console"\nflow = "hello"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "chatflow", "flows", "--config", str(tmp_path / "chatflow.toml")],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "hello" in done.stdout
