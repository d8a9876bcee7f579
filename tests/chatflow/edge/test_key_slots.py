"""The rule that keeps the Redis edge usable on a Redis/Valkey Cluster, checked over all of
chatflow's code: the keys a Lua script or a MULTI/EXEC transaction touches together hash to one
slot whatever the values they are built from, scripts touch only the keys they are given, and
every key is built in `chatflow.edge.keys`.

The check is static: for each script call (`keys=[...]`) and each `pipeline(transaction=True)`
block, every `keys.<builder>(...)` is evaluated with one made-up value per distinct argument
expression (the same expression, the same value), and redis-py's `key_slot` must agree. Keys
that only share a slot by chance of the values would get different values here, and fail.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from redis.crc import key_slot

from chatflow.edge import keys

ROOT = Path(__file__).resolve().parents[3]
SOURCES = sorted([*(ROOT / "chatflow").rglob("*.py"), *(ROOT / "providers").rglob("*.py")])

# Script calls allowed to span slots, each with what keeps it off a cluster.
SINGLE_NODE_ONLY = {
    # BufferedDelivery.admit reads the opt-out first on a cluster and calls `_enqueue` instead
    # (tests/chatflow/edge/test_inbound.py runs that path on a real cluster).
    ("chatflow/edge/buffer.py", "self._admit"),
}
# Scripts that build a key from an argument rather than taking it in KEYS, each with why it
# stays in the slot of the keys the script is given.
BUILT_IN_SCRIPT = {
    # The windows' prefix carries the due set's hash tag (`keys.digest_window`).
    ("chatflow/edge/digest.py", "_POP"),
}


@dataclass
class Group:
    where: str
    what: str
    keys: list[ast.expr]
    function: ast.AST | None


def test_the_keys_a_script_or_a_transaction_touches_together_hash_to_one_slot() -> None:
    groups = [group for path in SOURCES for group in _groups(path)]
    assert any(len(g.keys) > 1 for g in groups), "the scan found no multi-key script: it is broken"
    spanning = []
    for group in groups:
        values: dict[str, str] = {}
        built = [_evaluate(key, group.function, values) for key in group.keys]
        slots = {key_slot(key.encode()) for key in built if key is not None}
        if len(slots) > 1:
            spanning.append(f"{group.where} {group.what}: {built}")
    assert spanning == []


def test_every_key_in_a_script_call_is_built_by_chatflow_edge_keys() -> None:
    unbuilt = []
    for path in SOURCES:
        if not _relative(path).startswith("chatflow/"):
            continue  # providers import only chatflow.domain: their few keys are their own
        for group in _groups(path):
            values: dict[str, str] = {}
            for key in group.keys:
                if _evaluate(key, group.function, values) is None:
                    unbuilt.append(f"{group.where} {group.what}: {ast.unparse(key)}")
    assert unbuilt == []


def test_scripts_touch_only_the_keys_they_are_given() -> None:
    # Every redis.call whose command names a key takes it from KEYS (TIME names none).
    call = re.compile(r"redis\.call\(\s*'(\w+)'\s*(?:,\s*([^,)]+))?")
    offending = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
                continue
            if not isinstance(node.value.value, str) or "redis.call(" not in node.value.value:
                continue
            name = ast.unparse(node.targets[0])
            if (_relative(path), name) in BUILT_IN_SCRIPT:
                continue
            for command, first in call.findall(node.value.value):
                if command.upper() != "TIME" and not first.strip().startswith("KEYS["):
                    offending.append(f"{_relative(path)} {name}: {command} {first}")
    assert offending == []


def test_the_digest_windows_share_the_due_sets_slot() -> None:
    # What makes `_POP`'s own key safe (BUILT_IN_SCRIPT).
    assert key_slot(keys.digest_window("welcome:+15550001").encode()) == key_slot(keys.digest_due().encode())


def test_no_key_is_spelled_outside_chatflow_edge_keys() -> None:
    # chatflow's own code; providers may import only chatflow.domain, so their keys (the console's
    # outbox, the email channel's threads) are their own, each touched one at a time.
    spelled = [
        f"{_relative(path)}:{node.lineno}"
        for path in SOURCES
        if path.name != "keys.py" and _relative(path).startswith("chatflow/")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.match(rf"{keys.PREFIX}:\S", node.value)
    ]
    assert spelled == []


# -- the scan ----------------------------------------------------------------------------------------


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _groups(path: Path) -> list[Group]:
    tree = ast.parse(path.read_text())
    found: list[Group] = []
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
        for node in ast.walk(function):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "keys" and isinstance(keyword.value, ast.List):
                        what = ast.unparse(node.func)
                        if (_relative(path), what) in SINGLE_NODE_ONLY:
                            continue
                        found.append(Group(f"{_relative(path)}:{node.lineno}", what, keyword.value.elts, function))
            if isinstance(node, ast.AsyncWith | ast.With) and any(
                _is_transaction(item.context_expr) for item in node.items
            ):
                built = [
                    call
                    for statement in node.body
                    for call in ast.walk(statement)
                    if isinstance(call, ast.Call) and _is_builder(call)
                ]
                found.append(Group(f"{_relative(path)}:{node.lineno}", "MULTI/EXEC", list(built), function))
    return found


def _is_transaction(expression: ast.expr) -> bool:
    return (
        isinstance(expression, ast.Call)
        and isinstance(expression.func, ast.Attribute)
        and expression.func.attr == "pipeline"
        and any(
            k.arg == "transaction" and isinstance(k.value, ast.Constant) and k.value.value for k in expression.keywords
        )
    )


def _is_builder(call: ast.Call) -> bool:
    return (
        isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) and call.func.value.id == "keys"
    )


def _evaluate(key: ast.expr, function: ast.AST | None, values: dict[str, str]) -> str | None:
    """The key `key` builds with made-up values, or None when it is not a `keys.` builder's."""
    if isinstance(key, ast.Name) and function is not None:
        assigned = _assigned(key.id, function)
        return _evaluate(assigned, None, values) if assigned is not None else None
    if not (isinstance(key, ast.Call) and _is_builder(key)):
        return None
    assert isinstance(key.func, ast.Attribute)
    builder = getattr(keys, key.func.attr)
    arguments = [values.setdefault(ast.unparse(a), f"value{len(values)}") for a in key.args]
    return str(builder(*arguments))


def _assigned(name: str, function: ast.AST) -> ast.expr | None:
    """What `name` was assigned in the function (`a = ...` or `a, b = ..., ...`)."""
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                return node.value
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for element, value in zip(target.elts, node.value.elts, strict=False):
                    if isinstance(element, ast.Name) and element.id == name:
                        return value
    return None
