"""Which flows a worker runs, by name and version.

Running conversations stay on the version they started with (see "Changing a flow safely" in
the README): a worker keeps every version that still has conversations, and a new conversation
takes the highest version.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable

from chatflow.domain.errors import UnknownFlow
from chatflow.flows.flow import Flow


class FlowRegistry:
    def __init__(self, flows: Iterable[type[Flow]] = ()) -> None:
        self._flows: dict[str, dict[int, type[Flow]]] = {}
        for flow in flows:
            self.add(flow)

    def add(self, flow: type[Flow]) -> None:
        self._flows.setdefault(flow.name, {})[flow.version] = flow

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
    """Every Flow subclass with steps defined in a module (`conversations.demo`)."""
    module = importlib.import_module(module_name)
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Flow)
        and value.__module__ == module.__name__
        and value.steps
    ]


# The workflow looks flows up here; workers register theirs when they start.
registry = FlowRegistry()
