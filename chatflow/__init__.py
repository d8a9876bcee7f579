"""chatflow: conversations by SMS and WhatsApp, as chat flows written in Python.

The public authoring API; everything a flow needs is importable from here.
"""

from chatflow.edge.quiet_hours import SendWindow
from chatflow.engine import Convo
from chatflow.flow import Flow, FlowDefinitionError
from chatflow.matching import (
    Choice,
    anything,
    keyword,
    no,
    normalise,
    number,
    regex,
    yes,
)
from chatflow.steps import (
    Ask,
    Delay,
    End,
    Http,
    If,
    Say,
    Wait,
    WaitUntil,
    days,
    hours,
    minutes,
    seconds,
)

__all__ = [
    "Ask",
    "Choice",
    "Convo",
    "Delay",
    "End",
    "Flow",
    "FlowDefinitionError",
    "Http",
    "If",
    "Say",
    "SendWindow",
    "Wait",
    "WaitUntil",
    "anything",
    "days",
    "hours",
    "keyword",
    "minutes",
    "no",
    "normalise",
    "number",
    "regex",
    "seconds",
    "yes",
]
