"""A WhatsApp template as a provider has it: what `chatflow templates sync` checks the flows'
declared templates against (its name, language, status and the parameters it takes).

The Cloud API's templates belong to the WhatsApp Business Account; Twilio's are Content
resources, each with the approval WhatsApp gave it. Both are read into this one shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# `{{1}}` or `{{order_id}}`: a template's placeholder, positional or named.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


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
