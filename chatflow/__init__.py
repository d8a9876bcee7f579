"""chatflow: conversations by SMS, WhatsApp and email, as chat flows written in Python.

The public authoring API; everything a flow needs is importable from here.
"""

from chatflow.domain.errors import FlowDefinitionError, MediaUnavailable
from chatflow.domain.messages import Location
from chatflow.domain.secrets import secret
from chatflow.domain.source import Report, SourceEvent, SourceMapping, Start
from chatflow.flows.engine import Convo
from chatflow.flows.flow import Flow
from chatflow.flows.i18n import AskLanguage
from chatflow.flows.matching import (
    Choice,
    anything,
    keyword,
    location,
    media,
    no,
    normalise,
    number,
    reaction,
    regex,
    submitted,
    yes,
)
from chatflow.flows.quiet_hours import SendWindow
from chatflow.flows.split import Split
from chatflow.flows.steps import (
    Ask,
    Delay,
    End,
    Handover,
    Http,
    If,
    Notify,
    Say,
    Wait,
    WaitUntil,
    days,
    hours,
    minutes,
    seconds,
)
from chatflow.flows.templates import Button, Template

__all__ = [
    "Ask",
    "AskLanguage",
    "Button",
    "Choice",
    "Convo",
    "Delay",
    "End",
    "Flow",
    "FlowDefinitionError",
    "Handover",
    "Http",
    "If",
    "Location",
    "MediaUnavailable",
    "Notify",
    "Report",
    "Say",
    "SendWindow",
    "SourceEvent",
    "SourceMapping",
    "Split",
    "Start",
    "Template",
    "Wait",
    "WaitUntil",
    "anything",
    "days",
    "hours",
    "keyword",
    "location",
    "media",
    "minutes",
    "no",
    "normalise",
    "number",
    "reaction",
    "regex",
    "seconds",
    "secret",
    "submitted",
    "yes",
]
