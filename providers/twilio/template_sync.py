"""`chatflow templates sync` for Twilio WhatsApp: the flows' declared templates checked against the
account's content templates and the approvals WhatsApp gave them, and the contents that show the
flows' choices as buttons created where missing (with `create`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from chatflow.domain.channel import read_settings
from chatflow.domain.messages import Option
from chatflow.domain.templates import ApprovedTemplate, DeclaredTemplate, TemplateCheck, shown
from providers.twilio.content import ContentApi, Shape, same_language, shape_for
from providers.twilio.settings import TwilioSettings

PROVIDER = "twilio"


def _variables(template: DeclaredTemplate) -> list[str]:
    """The ContentVariables keys a send of `template` gives Twilio: the ones the step names, else
    the body's parameters by name or position."""
    if template.variables:
        return list(template.variables)
    return [name or str(index) for index, name in enumerate(template.body, start=1)]


def _content_of(template: DeclaredTemplate, contents: Sequence[ApprovedTemplate]) -> ApprovedTemplate | str:
    """The account's content a send of `template` uses, or why there is none."""
    if template.content_sid:
        found = next((c for c in contents if c.sid == template.content_sid), None)
        if found is None:
            return f"no content {template.content_sid} in the Twilio account"
        if not template.language_from_data and not same_language(template.language, found.language):
            return f"content {found.sid} is in {found.language or 'no language'}"
        return found
    # A send looks it up by the name WhatsApp approved it under (providers/twilio/content.py).
    found = next(
        (
            c
            for c in contents
            if c.name == template.name and (template.language_from_data or same_language(template.language, c.language))
        ),
        None,
    )
    return (
        found if found is not None else "no content_sid, and no content of that name and language in the Twilio account"
    )


def check(declared: Sequence[DeclaredTemplate], contents: Sequence[ApprovedTemplate]) -> list[str]:
    problems = []
    for template in declared:
        found = _content_of(template, contents)
        if isinstance(found, str):
            problems.append(template.problem(PROVIDER, found))
            continue
        if not found.approved:
            reason = f" ({found.rejection_reason})" if found.rejection_reason else ""
            problems.append(
                template.problem(PROVIDER, f"content {found.sid}: WhatsApp approval is {found.status}{reason}")
            )
        ours, theirs = _variables(template), list(found.variables)
        if sorted(ours) != sorted(theirs):
            problems.append(
                template.problem(
                    PROVIDER, f"content {found.sid} takes variables {shown(theirs)}, the step gives {shown(ours)}"
                )
            )
    return problems


def choice_shapes(choices: Mapping[str, Sequence[Option]]) -> dict[Shape, list[str]]:
    """The contents the flows' choice steps need on Twilio WhatsApp, with the steps that need each."""
    shapes: dict[Shape, list[str]] = {}
    for where, options in choices.items():
        shape = shape_for("", options)
        if shape is not None:
            shapes.setdefault(shape, []).append(where)
    return shapes


async def sync_templates(
    environment: Mapping[str, str],
    declared: Sequence[DeclaredTemplate],
    choices: Mapping[str, Sequence[Option]],
    http: httpx.AsyncClient,
    create: bool,
) -> TemplateCheck:
    api = ContentApi(read_settings(TwilioSettings, environment), http)
    contents = await api.approved()
    result = TemplateCheck(problems=check(declared, contents))
    have = {c.friendly_name for c in contents}
    for shape, steps in choice_shapes(choices).items():
        if shape.friendly_name in have:
            continue
        if create:
            sid = await api.create(shape)
            result.notes.append(f"created Twilio content {shape.friendly_name} ({sid}) for {', '.join(steps)}")
        else:
            result.notes.append(
                f"{', '.join(steps)}: choices go as a numbered menu on Twilio WhatsApp until "
                f"`chatflow templates sync --create` creates content {shape.friendly_name}"
            )
    return result
