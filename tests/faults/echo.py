"""The flow the fault suite talks to: every message answered with its own text and a count.

`m7 #7` answers the customer's `m7`, the 7th message this conversation answered. A message
processed twice shows as the same text with two counts (`m7 #7`, then `m7 #8`); a message sent
twice to the provider as the same answer twice (`m7 #7`, `m7 #7`).
"""

from chatflow import Convo, End, Flow, Wait, anything, days


class FaultEcho(Flow):
    """Echo each message with how many the conversation has answered."""

    async def answer(self, convo: Convo) -> None:
        answered = int(convo.data.get("answered", 0)) + 1
        convo.data["answered"] = answered
        await convo.say(f"{convo.reply} #{answered}")

    listen = Wait(branches={anything: "answer"}, timeout=days(7), on_timeout="done")
    done = End("expired")
