"""`chatflow templates sync`: the flows' declared WhatsApp templates checked against the ones the
providers have approved, before deploy.

Every template a step declares (`Say/Ask/End(template=...)`) is handed, as a `DeclaredTemplate`,
to each channel that carries the config's WhatsApp numbers and can check templates
(`ChannelSpec.sync_templates`): a Cloud API number's channel reads the WhatsApp Business Account's
templates, a Twilio number's the account's content templates. A problem is one line naming the
flow, the step, the template and what differs (missing, another language, not approved, other
parameters). With `create`, a channel may create what showing the flows' choices needs (Twilio's
button contents).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpx

import providers
from chatflow.domain.channel import ChannelSpec, specs_by_name
from chatflow.domain.config import Config
from chatflow.domain.messages import Option
from chatflow.domain.templates import DeclaredTemplate
from chatflow.flows.flow import Flow
from chatflow.flows.steps import Ask
from chatflow.flows.templates import Template

WHATSAPP = "whatsapp"


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0


def declared(where: str, template: Template) -> DeclaredTemplate:
    """A step's template as the channels check it: what a send of it gives."""
    return DeclaredTemplate(
        where=where,
        name=template.name,
        language=template.language,
        header=tuple(name for name, _ in template.header),
        header_media=bool(template.header_media),
        body=tuple(name for name, _ in template.body),
        buttons=tuple((button.index, button.kind) for button in template.buttons),
        content_sid=template.content_sid,
        variables=tuple(key for key, _ in template.variables),
    )


def declared_templates(flows: Iterable[type[Flow]]) -> list[DeclaredTemplate]:
    """Every (flow, step, template) of `flows`, in declaration order."""
    found = [
        declared(f"{flow.name}.{name}", version)
        for flow in flows
        for name, step in flow.steps.items()
        if isinstance(template := getattr(step, "template", None), Template)
        # Each language it was approved in (`languages`) is checked as a template of its own.
        for version in (template, *(template.in_language(language) for language in template.languages))
    ]
    # A flow's versions mostly declare the same templates: each is checked once.
    return list(dict.fromkeys(found))


def choices(flows: Iterable[type[Flow]]) -> dict[str, list[Option]]:
    """The flows' choice steps (flow.step) with the options they offer."""
    return {
        f"{flow.name}.{name}": step.choices.options()
        for flow in flows
        for name, step in flow.steps.items()
        if isinstance(step, Ask) and step.choices.choices
    }


def template_checkers(config: Config) -> list[ChannelSpec]:
    """The channels that carry the config's WhatsApp numbers and check templates, each once."""
    specs = specs_by_name(providers.CHANNELS)
    names = dict.fromkeys(b.provider for b in config.numbers if b.channel == WHATSAPP)
    return [specs[name] for name in names if name in specs and specs[name].sync_templates is not None]


async def sync(config: Config, flows: Sequence[type[Flow]], http: httpx.AsyncClient, *, create: bool = False) -> Report:
    """Check the flows' templates with each channel the config's WhatsApp numbers go through;
    ConfigError for a missing account id or credentials, ChatflowError when a provider's API
    does not answer."""
    report = Report()
    templates = declared_templates(flows)
    asks = choices(flows)
    for spec in template_checkers(config):
        assert spec.sync_templates is not None
        report.checked += len(templates)
        result = await spec.sync_templates(config.settings.environment, templates, asks, http, create)
        report.problems += result.problems
        report.notes += result.notes
    return report
