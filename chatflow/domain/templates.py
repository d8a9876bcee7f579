"""WhatsApp templates as `chatflow templates sync` sees them: a template as a provider has it
(its name, language, status and the parameters it takes), a template as a flow's step declares
it, and what a channel answers when asked to check the one against the other.

The Cloud API's templates belong to the WhatsApp Business Account; Twilio's are Content
resources, each with the approval WhatsApp gave it. Both are read into one shape. The checking is
each channel's own (`ChannelSpec.sync_templates`): chatflow names no provider.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatflow.domain.messages import Option

# `{{1}}` or `{{order_id}}`: a template's placeholder, positional or named.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def shown(names: Sequence[str]) -> str:
    """Parameters as a template writes them: `{{1}}, {{2}}`, `{{order_id}}` ("none" for none)."""
    return ", ".join(f"{{{{{name}}}}}" for name in names) or "none"


def placeholders(text: str) -> tuple[str, ...]:
    """The placeholders of `text`, each once, in the order they first appear."""
    return tuple(dict.fromkeys(PLACEHOLDER.findall(text)))


@dataclass(frozen=True)
class ApprovedTemplate:
    """One template in one language, as the provider reports it."""

    provider: str  # whatsapp_cloud | twilio
    name: str  # the name WhatsApp approved it under
    language: str  # en_US (Meta), en (Twilio)
    status: str  # in capitals: APPROVED, PENDING, REJECTED, PAUSED, UNSUBMITTED...
    category: str = ""
    sid: str = ""  # Twilio's Content SID (HX...); "" on the Cloud API
    # The parameters each part takes: a header's placeholders ("media" for an image, video or
    # document header), the body's, and the buttons' that take one, by their index.
    header: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    buttons: dict[int, str] = field(default_factory=dict)  # index -> url | quick_reply | copy_code
    named: bool = False  # parameters by name ({{order_id}}) rather than position ({{1}})
    # Twilio: every variable the content's types use, whatever part they are in.
    variables: tuple[str, ...] = ()
    friendly_name: str = ""  # Twilio's own name of the content (not shown to customers)
    rejection_reason: str = ""

    @property
    def approved(self) -> bool:
        return self.status == "APPROVED"


@dataclass(frozen=True)
class DeclaredTemplate:
    """A template as a flow's step declares it: what a send of it gives the provider."""

    where: str  # flow.step
    name: str
    language: str  # "{...}" when chosen from the data at send time
    # The names of the parameters the step gives, in order ("" for a positional one).
    header: tuple[str, ...] = ()
    header_media: bool = False  # the step gives a header image, video or document link
    body: tuple[str, ...] = ()
    buttons: tuple[tuple[int, str], ...] = ()  # (index, kind) of each button given a value
    content_sid: str = ""  # Twilio's Content SID, when the step names one
    variables: tuple[str, ...] = ()  # Twilio's ContentVariables keys, when the step names them

    @property
    def language_from_data(self) -> bool:
        return "{" in self.language

    def problem(self, provider: str, what: str) -> str:
        return f"{self.where}: {provider} template {self.name}:{self.language}: {what}"


@dataclass
class TemplateCheck:
    """What a channel found: one line per problem, and notes that are not problems."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# A channel's check of the declared templates against its account's, given the environment (for
# its settings), the templates, the flows' choice steps (flow.step -> their options, for a channel
# that shows choices through templates of its own), an httpx.AsyncClient and whether it may create
# what is missing. ConfigError for missing settings, ChatflowError when its API does not answer.
TemplateSync = Callable[
    [Mapping[str, str], Sequence[DeclaredTemplate], Mapping[str, Sequence[Option]], Any, bool],
    Awaitable[TemplateCheck],
]
