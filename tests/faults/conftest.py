"""The fault suite's table, printed at the end of the run (pytest captures what tests print)."""

from __future__ import annotations

from typing import Any

from tests.faults.load import Tally
from tests.faults.scenarios import FULL, LOAD, table

TALLIES: list[Tally] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLIES:
        mode = "full" if FULL else "short"
        terminalreporter.write_sep("=", f"fault suite ({mode}: {LOAD.customers} customers x {LOAD.messages} messages)")
        terminalreporter.write_line(table(TALLIES))
