"""`chatflow templates sync`: the flows' declared WhatsApp templates checked against the ones the
providers have approved, before deploy.

Every template a step declares (`Say/Ask/End(template=...)`) is looked up where the config's
WhatsApp numbers send from: the WhatsApp Business Account's templates for Cloud API numbers, the
Twilio account's content templates for Twilio WhatsApp numbers. A problem is one line naming the
flow, the step, the template and what differs (missing, another language, not approved, other
parameters). With `create`, the Content resources that show the flows' choices as buttons on
Twilio WhatsApp are created where missing (see providers/twilio/content.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import httpx

from chatflow.domain.channel import read_settings
from chatflow.domain.config import Config
from chatflow.domain.templates import ApprovedTemplate
from chatflow.flows.flow import Flow
from chatflow.flows.steps import Ask
from chatflow.flows.templates import Template
from providers.twilio.content import ContentApi, Shape, same_language, shape_for
from providers.twilio.settings import TwilioSettings
from providers.whatsapp_cloud.settings import CloudSettings
from providers.whatsapp_cloud.templates import fetch_templates

CLOUD, TWILIO = "whatsapp_cloud", "twilio"


@dataclass(frozen=True)
class Declared:
    flow: str
    step: str
    template: Template

    def problem(self, provider: str, what: str) -> str:
        return f"{self.flow}.{self.step}: {provider} template {self.template.name}:{self.template.language}: {what}"


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0


def declared_templates(flows: Iterable[type[Flow]]) -> list[Declared]:
    """Every (flow, step, template) of `flows`, in declaration order."""
    found = [
        Declared(flow.name, name, version)
        for flow in flows
        for name, step in flow.steps.items()
        if isinstance(template := getattr(step, "template", None), Template)
        # Each language it was approved in (`languages`) is checked as a template of its own.
        for version in (template, *(template.in_language(language) for language in template.languages))
    ]
    # A flow's versions mostly declare the same templates: each is checked once.
    return list(dict.fromkeys(found))


def whatsapp_providers(config: Config) -> list[str]:
    """The providers the config's WhatsApp numbers send through."""
    found = {b.provider for b in config.numbers if b.channel == "whatsapp" and b.provider in (CLOUD, TWILIO)}
    return [provider for provider in (CLOUD, TWILIO) if provider in found]


def _count(n: int) -> str:
    return f"{n} parameter{'' if n == 1 else 's'}"


def _shown(names: Sequence[str]) -> str:
    return ", ".join(f"{{{{{name}}}}}" for name in names) or "none"


def _parameters(part: str, declared: Sequence[tuple[str, str]], theirs: Sequence[str], named: bool) -> Iterator[str]:
    ours = [name for name, _ in declared]
    if len(ours) != len(theirs):
        yield f"{part} takes {_count(len(theirs))} ({_shown(theirs)}), the step gives {len(ours)}"
    elif named and any(not name for name in ours):
        yield f"{part} takes named parameters ({_shown(theirs)}), the step gives them by position"
    elif not named and any(ours):
        yield f"{part} takes positional parameters ({_shown(theirs)}), the step names them ({_shown(ours)})"
    elif named and set(ours) != set(theirs):
        yield f"{part} takes {_shown(theirs)}, the step gives {_shown(ours)}"


def cloud_differences(template: Template, found: ApprovedTemplate) -> list[str]:
    """What differs between a declared template and the account's one of its name and language."""
    differences = []
    if not found.approved:
        reason = f" ({found.rejection_reason})" if found.rejection_reason not in ("", "NONE") else ""
        differences.append(f"status is {found.status or 'unknown'}{reason}, not APPROVED")
    if found.header == ("media",):
        if not template.header_media or len(template.header) != 1:
            differences.append("header is an image, video or document: the step must give its link (header_media=)")
    else:
        differences += _parameters("header", template.header, found.header, found.named)
    differences += _parameters("body", template.body, found.body, found.named)
    ours = {button.index: button.kind for button in template.buttons}
    for index, kind in sorted(found.buttons.items()):
        if index not in ours and kind != "quick_reply":  # a quick reply's payload may be left out
            differences.append(f"button {index} ({kind}) takes a parameter the step does not give")
    for index, kind in sorted(ours.items()):
        if found.buttons.get(index) != kind:
            differences.append(f"button {index} is not a {kind} button that takes a parameter")
    return differences


def check_cloud(declared: Sequence[Declared], approved: Sequence[ApprovedTemplate], account: str) -> list[str]:
    problems = []
    for item in declared:
        template = item.template
        named = [t for t in approved if t.name == template.name]
        if not named:
            problems.append(item.problem(CLOUD, f"no template of that name in WhatsApp Business Account {account}"))
            continue
        if "{" in template.language:  # chosen from the data at send time: any of its languages
            found = named
        else:
            found = [t for t in named if t.language == template.language]
        if not found:
            languages = ", ".join(sorted({t.language for t in named}))
            problems.append(item.problem(CLOUD, f"no {template.language} version (the account has {languages})"))
            continue
        for version in found:
            problems += [item.problem(CLOUD, what) for what in cloud_differences(template, version)]
    return problems


def _variables(template: Template) -> list[str]:
    """The ContentVariables keys a send of `template` gives Twilio."""
    if template.variables:
        return [key for key, _ in template.variables]
    return [name or str(index) for index, (name, _) in enumerate(template.body, start=1)]


def check_twilio(declared: Sequence[Declared], contents: Sequence[ApprovedTemplate]) -> list[str]:
    problems = []
    for item in declared:
        template = item.template
        if template.content_sid:
            found = next((c for c in contents if c.sid == template.content_sid), None)
            if found is None:
                problems.append(item.problem(TWILIO, f"no content {template.content_sid} in the Twilio account"))
                continue
            if "{" not in template.language and not same_language(template.language, found.language):
                problems.append(item.problem(TWILIO, f"content {found.sid} is in {found.language or 'no language'}"))
        else:
            # A send looks it up by the name WhatsApp approved it under (providers/twilio/content.py).
            found = next(
                (
                    c
                    for c in contents
                    if c.name == template.name
                    and ("{" in template.language or same_language(template.language, c.language))
                ),
                None,
            )
            if found is None:
                problems.append(
                    item.problem(
                        TWILIO, "no content_sid, and no content of that name and language in the Twilio account"
                    )
                )
                continue
        if not found.approved:
            reason = f" ({found.rejection_reason})" if found.rejection_reason else ""
            problems.append(item.problem(TWILIO, f"content {found.sid}: WhatsApp approval is {found.status}{reason}"))
        ours, theirs = _variables(template), list(found.variables)
        if sorted(ours) != sorted(theirs):
            problems.append(
                item.problem(
                    TWILIO, f"content {found.sid} takes variables {_shown(theirs)}, the step gives {_shown(ours)}"
                )
            )
    return problems


def choice_shapes(flows: Iterable[type[Flow]]) -> dict[Shape, list[str]]:
    """The contents the flows' choice steps need on Twilio WhatsApp, with the steps that need each."""
    shapes: dict[Shape, list[str]] = {}
    for flow in flows:
        for name, step in flow.steps.items():
            if isinstance(step, Ask) and step.choices.choices:
                shape = shape_for("", step.choices.options())
                if shape is not None:
                    shapes.setdefault(shape, []).append(f"{flow.name}.{name}")
    return shapes


async def sync(config: Config, flows: Sequence[type[Flow]], http: httpx.AsyncClient, *, create: bool = False) -> Report:
    """Check the flows' templates against each WhatsApp provider the config sends through;
    ConfigError for a missing account id or credentials, ChatflowError when a provider's API
    does not answer."""
    report = Report()
    declared = declared_templates(flows)
    environment = config.settings.environment
    for provider in whatsapp_providers(config):
        report.checked += len(declared)
        if provider == CLOUD:
            settings = read_settings(CloudSettings, environment)
            approved = await fetch_templates(settings, http)
            report.problems += check_cloud(declared, approved, settings.business_account_id)
        else:
            api = ContentApi(read_settings(TwilioSettings, environment), http)
            contents = await api.approved()
            report.problems += check_twilio(declared, contents)
            have = {c.friendly_name: c.sid for c in contents}
            for shape, steps in choice_shapes(flows).items():
                if shape.friendly_name in have:
                    continue
                if create:
                    sid = await api.create(shape)
                    report.notes.append(f"created Twilio content {shape.friendly_name} ({sid}) for {', '.join(steps)}")
                else:
                    report.notes.append(
                        f"{', '.join(steps)}: choices go as a numbered menu on Twilio WhatsApp until "
                        f"`chatflow templates sync --create` creates content {shape.friendly_name}"
                    )
    return report
