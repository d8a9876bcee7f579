"""The README's flow and test examples run as written."""

import re
import sys
import types
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def python_blocks(section: str) -> str:
    body = README.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```python\n(.*?)```", body, re.S))


async def test_readme_first_flow_and_its_test_pass():
    module = types.ModuleType("readme_example")
    sys.modules[module.__name__] = module
    exec(python_blocks("Write your first flow"), module.__dict__)
    exec(python_blocks("Test a flow"), module.__dict__)
    await module.test_reminder_then_expiry()
