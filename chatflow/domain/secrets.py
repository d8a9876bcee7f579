"""`secret("NAME")`: a value an `Http` call sends that the flow names but never holds.

The name travels with the request (in Temporal's history, in the decision trace); the value is
read from the worker's environment by the activity that makes the call, just before it is made,
so it is never in a history, a trace, the dashboard or a recorded history file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from chatflow.domain.errors import FlowDefinitionError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Secret:
    """The environment variable `name` of the worker, sent after `prefix` ("Bearer ")."""

    name: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"{self.prefix}secret:{self.name}"

    def resolve(self, env: Mapping[str, str]) -> str | None:
        """The value to send, or None when the worker's environment does not have it."""
        value = env.get(self.name)
        return None if not value else self.prefix + value


def secret(name: str, *, prefix: str = "") -> Secret:
    """A header value or query parameter of an `Http` step read from the worker's environment
    variable `name` when the call is made: `headers={"Authorization": secret("SHOP_TOKEN",
    prefix="Bearer ")}`. History and trace show `secret:SHOP_TOKEN`, never the value."""
    if not _NAME.fullmatch(name):
        raise FlowDefinitionError(f"secret({name!r}): the name of an environment variable (letters, digits, _)")
    return Secret(name, prefix)
