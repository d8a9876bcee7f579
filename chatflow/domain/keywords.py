"""Words the edge answers itself, before any flow sees the message, on every number.

Carriers and Meta expect STOP and its synonyms to unsubscribe and HELP to answer, whatever flow
runs; a flow that branched on one of them would never see it, so flows may not (`chatflow.flows`
checks it when the flow class is defined).
"""

from __future__ import annotations

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "OPTOUT", "REVOKE"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
RESERVED_WORDS = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS


def command(text: str) -> str:
    """The whole message as a keyword: case and surrounding spaces and punctuation do not count."""
    return text.strip().strip(".!").strip().upper()
