"""`Split`: an experiment step that sends each customer down one of several branches by weight.

The branch is a hash of the flow, the step and the customer's address, never a random draw: the
same customer always gets the same branch (in this conversation and the next), and a workflow
that replays its history decides exactly as it did, so it is safe inside Temporal. The branch is
kept in the conversation's data under `split:<step>`, which the search attribute ChatflowData
and the sinks carry, so outcomes can be counted per branch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

from chatflow.domain.errors import FlowDefinitionError
from chatflow.flows.steps import Step, target_name

DATA_PREFIX = "split:"  # data["split:<step>"] = the branch (step name) the customer was sent down


def choose_branch(weights: Mapping[str, float], flow: str, step: str, customer: str) -> str:
    """The branch this customer goes down: a point in [0, total weight) from a SHA-256 of the
    flow, the step and the customer, then the branches' weights laid end to end in order."""
    digest = hashlib.sha256(f"{flow}\n{step}\n{customer}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(weights.values())
    reached = 0.0
    for branch, weight in weights.items():
        reached += weight
        if point < reached:
            return branch
    return list(weights)[-1]  # float rounding at the very end of the range


def _share(weight: float, total: float) -> str:
    return f"{round(weight / total * 100, 1):g} %"


class Split(Step):
    """Send each customer to one of the `weights`' steps, in proportion to its weight
    (`Split(weights={"short": 50, "long": 50})`), the same one every time for a customer.

    Which one is saved in the data as `split:<this step>`; a journey that sets that key itself
    (to one of the branches) chooses the branch.
    """

    def __init__(self, weights: Mapping[str | Step, float]) -> None:
        named: dict[str, float] = {}
        for target, weight in weights.items():
            name = target_name(target) or ""
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise FlowDefinitionError(f"Split: the weight of {name!r} must be a number, not {weight!r}")
            if not math.isfinite(weight) or weight <= 0:
                raise FlowDefinitionError(f"Split: the weight of {name!r} must be a positive number, not {weight!r}")
            named[name] = float(weight)
        if len(named) < 2:
            raise FlowDefinitionError("Split needs at least two branches (step name: weight)")
        self.weights = named

    @property
    def data_key(self) -> str:
        return DATA_PREFIX + self.name

    def share(self, branch: str) -> str:
        """The branch's share of customers, as people read it ("50 %")."""
        return _share(self.weights[branch], sum(self.weights.values()))

    def label(self, branch: str) -> str:
        """The edge to a branch: it names the branch's share, so `chatflow graph` shows it."""
        return f"split {self.share(branch)}: {branch}"

    def edges(self) -> list[tuple[str, str | None]]:
        return [(self.label(branch), branch) for branch in self.weights]


__all__ = ["DATA_PREFIX", "Split", "choose_branch"]
