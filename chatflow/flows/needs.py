"""What a journey's data must hold for a flow: the keys its templates and conditions read.

A journey started without a key its first prompt needs used to be accepted and fail at once
(`template needs 'name'`). Here the flow is read before it starts: every step reachable from the
first one, its templates' fields (`{name}`, `{customer.name}`) and the keys its conditions read
(`data["plan"]` in an `If`'s condition, a `WaitUntil`'s data key). A key is not asked of the
journey when the flow provides it itself: its `defaults`, a step's `save_as`, business events
(`events`), or one the flow declares `optional` (read behind a check of its own). Steps after a
code step are not read: the code may set any key.
"""

from __future__ import annotations

import ast
import inspect
import string
import textwrap
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from chatflow.flows.flow import Flow
from chatflow.flows.steps import Ask, Code, End, Handover, Http, If, Say, Step, WaitUntil

PROVIDED = frozenset({"events"})  # set by the engine as business events arrive


def needed_keys(flow: type[Flow]) -> list[str]:
    """The data fields (dotted paths) the flow reads that only a journey's data can provide."""
    provided = set(PROVIDED) | {str(getattr(s, "save_as", "")) for s in flow.steps.values()} - {"", "None"}
    optional = set(getattr(flow, "optional", ()))
    needed: list[str] = []
    for step in _reachable(flow):
        for field in _fields(step):
            top = field.split(".", 1)[0]
            if top in provided or top in optional or field in optional or field in needed:
                continue
            if _holds(flow.defaults, field):
                continue
            needed.append(field)
    return needed


def missing_keys(flow: type[Flow], data: Mapping[str, Any]) -> list[str]:
    """The fields `needed_keys` names that neither `data` nor the flow's defaults hold."""
    merged = {**flow.defaults, **data}
    return [field for field in needed_keys(flow) if not _holds(merged, field)]


def _holds(data: Mapping[str, Any], field: str) -> bool:
    value: Any = data
    for part in field.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return True


def _reachable(flow: type[Flow]) -> Iterator[Step]:
    seen: set[str] = set()
    pending = [flow.first_step()]
    while pending:
        name = pending.pop(0)
        if name in seen or name not in flow.steps:
            continue
        seen.add(name)
        step = flow.steps[name]
        yield step
        if isinstance(step, Code):
            continue  # it may set any key: what follows is not the journey's to provide
        pending += [target for _, target in step.edges() if target]


def _fields(step: Step) -> Iterator[str]:
    texts: list[Any] = []
    if isinstance(step, Say | End | Handover):
        texts.append(step.text)
    elif isinstance(step, Ask):
        texts += [step.text, step.reprompt]
    elif isinstance(step, Http):
        texts += [step.url, step.json, *step.headers.values(), *step.params.values()]
    elif isinstance(step, WaitUntil) and isinstance(step.when, str):
        yield step.when
    elif isinstance(step, If):
        yield from _condition_keys(step.condition)
    template = getattr(step, "template", None)  # what goes outside WhatsApp's window instead
    if template is not None:
        texts += template.texts
    for text in texts:
        yield from _template_fields(text)


def _template_fields(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        try:
            parsed = list(string.Formatter().parse(value))
        except ValueError:
            return  # not a template the engine could render either; it says so when it runs
        for _, field, spec, _ in parsed:
            if field and not field.isdigit():
                yield field
            if spec and "{" in spec:  # a field inside a format spec: `{amount:currency:{currency}}`
                yield from _template_fields(spec)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _template_fields(item)
    elif isinstance(value, list):
        for item in value:
            yield from _template_fields(item)


def _condition_keys(condition: Callable[..., Any]) -> Iterator[str]:
    """Keys a condition reads by subscript (`data["plan"]`, `d["customer"]["tier"]`); `.get()`
    and `in` checks are the condition's own way of allowing a missing key."""
    try:
        source = textwrap.dedent(inspect.getsource(condition))
    except (OSError, TypeError):
        return
    tree = _parsed(source)
    if tree is None:
        return
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef)]
    if len(functions) != 1:
        return  # several lambdas on one line: which is this one is not known
    function = functions[0]
    if not function.args.args:
        return
    name = function.args.args[0].arg
    for node in ast.walk(function):
        path = _subscript_path(node, name)
        if path:
            yield path


def _subscript_path(node: ast.AST, name: str) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Subscript):
        key = node.slice
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str | int)):
            return ""
        parts.insert(0, str(key.value))
        node = node.value
    if parts and isinstance(node, ast.Name) and node.id == name:
        return ".".join(parts)
    return ""


def _parsed(source: str) -> ast.Module | None:
    """A lambda's source is the whole line it is on (`check = If(lambda d: ..., then="x")`,
    maybe cut inside a call): parse it, or the lambda alone."""
    for attempt in (source, source[source.find("lambda") :] if "lambda" in source else ""):
        while attempt:
            try:
                return ast.parse(attempt.strip())
            except SyntaxError:
                attempt = attempt[:-1]  # drop what follows the lambda, a character at a time
    return None
