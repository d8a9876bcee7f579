"""Keyword triggers: a number's `keywords` pick the flow a message starts (`JOIN` -> signup).

The keyword is the whole message or its first word, in any case. It only decides which flow
*starts*: a message to a conversation already running goes to that conversation, as any other.
"""

from __future__ import annotations

from chatflow.domain.config import NumberBinding
from chatflow.domain.messages import InboundMessage


def route(binding: NumberBinding, message: InboundMessage) -> str:
    """The flow this message starts on this number: a keyword's flow, else the number's own."""
    if not binding.keywords:
        return binding.flow
    keywords = {word.strip().upper(): flow for word, flow in binding.keywords.items()}
    text = (message.text or message.payload).strip().upper()
    if text in keywords:
        return keywords[text]
    first = text.split(maxsplit=1)[0].strip(".,!?:;") if text else ""
    return keywords.get(first, binding.flow)
