"""Which flows a worker runs, by name and version.

Running conversations stay on the version they started with (see "Changing a flow safely" in
the README): a worker keeps every version that still has conversations, and a new conversation
takes the highest version.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from chatflow.domain.errors import FlowDefinitionError, UnknownFlow
from chatflow.flows import i18n
from chatflow.flows.flow import Flow


class FlowRegistry:
    def __init__(self, flows: Iterable[type[Flow]] = ()) -> None:
        self._flows: dict[str, dict[int, type[Flow]]] = {}
        self._queues: dict[str, FlowRegistry] = {}
        self._replaying = False
        for flow in flows:
            self.add(flow)

    def add(self, flow: type[Flow]) -> None:
        self._flows.setdefault(flow.name, {})[flow.version] = flow
        # Its catalogues are read here, as the worker deploys it, never inside a workflow.
        i18n.load(flow)

    def get(self, name: str, version: int | None = None) -> type[Flow]:
        versions = self._flows.get(name)
        if not versions:
            known = ", ".join(sorted(self._flows)) or "none"
            raise UnknownFlow(f"unknown flow {name!r} (known flows: {known})")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise UnknownFlow(
                f"flow {name!r} version {version} is not deployed on this worker "
                f"(deployed: {sorted(versions)}); conversations on it wait until it is"
            )
        return versions[version]

    def deploy(self, flows: Iterable[type[Flow]], task_queue: str) -> None:
        """The flows a worker polling `task_queue` runs: exactly these on that queue (workers of
        one queue run the same flows), and among the process's flows."""
        flows = list(flows)
        self._queues[task_queue] = FlowRegistry(flows)
        for flow in flows:
            self.add(flow)

    def withdraw(self, task_queue: str) -> None:
        """No worker of this process polls `task_queue` any longer."""
        self._queues.pop(task_queue, None)

    def on(self, task_queue: str) -> FlowRegistry:
        """The flows the workflow runs on `task_queue`: its worker's. Several workers in one
        process (tests, each on a queue of its own) each see only their own, so a version 2 one
        test deployed never answers another's version 1. A queue no worker here polls (a replay)
        sees every flow of the process."""
        if self._replaying:
            return self
        return self._queues.get(task_queue, self)

    @contextmanager
    def replaying(self) -> Iterator[None]:
        """Every flow of the process, whichever queue the replayed histories name."""
        self._replaying = True
        try:
            yield
        finally:
            self._replaying = False

    def versions(self, name: str) -> list[int]:
        """Deployed versions of a flow, newest first."""
        return sorted(self._flows.get(name, {}), reverse=True)

    def names(self) -> list[str]:
        return sorted(self._flows)

    def __iter__(self):  # type: ignore[no-untyped-def]
        for versions in self._flows.values():
            yield from versions.values()

    def __contains__(self, name: object) -> bool:
        return name in self._flows


def flows_in(module_name: str) -> list[type[Flow]]:
    """Every Flow subclass with steps defined in a module (`conversations.demo`).

    A module that cannot be imported (a syntax error, a missing import, a flow that cannot run)
    is one FlowDefinitionError that starts with the file and line at fault: `reminders.py:12: ...`.
    ModuleNotFoundError for the module itself passes through: that one is the config's mistake.
    """
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            raise
        raise FlowDefinitionError(f"{_where(error)}: {type(error).__name__}: {error}") from None
    except FlowDefinitionError as error:
        raise FlowDefinitionError(f"{_where(error)}: {error}", step=error.step) from None
    except SyntaxError as error:  # the file and line are the message's own
        raise FlowDefinitionError(f"{_where(error)}: SyntaxError: {error.msg}") from None
    except Exception as error:  # noqa: BLE001 - whatever the module raised, said in one line
        raise FlowDefinitionError(f"{_where(error)}: {type(error).__name__}: {error}") from None
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, Flow) and value.__module__ == module.__name__ and value.steps
    ]


# The workflow looks flows up here; workers register theirs when they start.
registry = FlowRegistry()


_CHATFLOW = Path(__file__).resolve().parents[1]


def _where(error: BaseException) -> str:
    """`file:line` of what the author wrote wrong: the line a SyntaxError names, else the
    deepest frame of the author's code (not chatflow's, not importlib's); for a step at fault,
    the line declaring that step."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{_shown(error.filename)}:{error.lineno or 1}"
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<") and _CHATFLOW not in Path(frame.filename).resolve().parents
    ]
    if not frames:
        return "?"
    frame = frames[-1]
    line = frame.lineno or 1
    step = getattr(error, "step", "")
    if step:
        line = _step_line(frame.filename, line, step) or line
    return f"{_shown(frame.filename)}:{line}"


def _step_line(filename: str, class_line: int, step: str) -> int | None:
    """The line declaring `step` in the class whose statement is at `class_line`."""
    try:
        tree = ast.parse(Path(filename).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and (
            node.lineno == class_line or min((d.lineno for d in node.decorator_list), default=0) == class_line
        ):
            for item in node.body:
                targets = (
                    item.targets
                    if isinstance(item, ast.Assign)
                    else [item.target]
                    if isinstance(item, ast.AnnAssign)
                    else []
                )
                if any(isinstance(t, ast.Name) and t.id == step for t in targets):
                    return item.lineno
                if isinstance(item, ast.AsyncFunctionDef | ast.FunctionDef) and item.name == step:
                    return item.lineno
    return None


def _shown(filename: str) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    path = Path(filename).resolve()
    try:
        return str(path.relative_to(Path(os.getcwd()).resolve()))
    except ValueError:
        return str(path)
