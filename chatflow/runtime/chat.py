"""`chatflow chat`: talk to a flow from the terminal, through the console channel of a running app.

Lines typed go to `POST /console/messages`; a background thread long-polls
`GET /console/messages` and prints the bot's messages as they arrive, including those a timer
sends minutes later. End with Ctrl-D (or Ctrl-C).
"""

from __future__ import annotations

import threading
from typing import IO

import httpx

from chatflow.domain.errors import ChatflowError

POLL_WAIT = 20.0
QUIET_AFTER_EOF = 1.5  # after the last line, show replies until the bot is quiet this long


class ChatError(ChatflowError):
    pass


def console_number(http: httpx.Client, flow: str) -> str:
    """The number bound with provider console to `flow`, as the running app knows it."""
    numbers = http.get("/console/numbers").raise_for_status().json()["numbers"]
    for entry in numbers:
        if entry["flow"] == flow:
            return str(entry["number"])
    bound = ", ".join(f"{e['number']} -> {e['flow']}" for e in numbers) or "none"
    raise ChatError(
        f"no console number is bound to flow {flow!r} (console numbers: {bound}); add a "
        f'[[numbers]] entry with provider = "console" and flow = "{flow}" to chatflow.toml'
    )


class _Printer(threading.Thread):
    def __init__(self, http: httpx.Client, customer: str, cursor: str, prompt: str, out: IO[str]) -> None:
        super().__init__(daemon=True)
        self.http, self.customer, self.cursor, self.prompt, self.out = http, customer, cursor, prompt, out
        self.closing = threading.Event()

    def run(self) -> None:
        while True:
            wait = QUIET_AFTER_EOF if self.closing.is_set() else POLL_WAIT
            try:
                answer = self.http.get(
                    "/console/messages",
                    params={"customer": self.customer, "after": self.cursor, "wait": wait},
                    timeout=wait + 10,
                ).raise_for_status().json()
            except httpx.HTTPError as error:
                self.out.write(f"! cannot read the bot's messages: {error}\n")
                self.out.flush()
                if self.closing.wait(2):
                    return
                continue
            for message in answer["messages"]:
                self.show(message["text"])
            self.cursor = answer["next"]
            if self.closing.is_set() and not answer["messages"]:
                return

    def show(self, text: str) -> None:
        pad = " " * len(self.prompt)
        lines = text.splitlines() or [""]
        self.out.write("\n".join([self.prompt + lines[0], *(pad + line for line in lines[1:])]) + "\n")
        self.out.flush()


def chat(url: str, flow: str, customer: str, number: str | None, stdin: IO[str], out: IO[str]) -> None:
    with httpx.Client(base_url=url.rstrip("/"), timeout=10) as http:
        try:
            number = number or console_number(http, flow)
            cursor = http.get(
                "/console/messages", params={"customer": customer, "after": "latest"}
            ).raise_for_status().json()["next"]
        except httpx.HTTPError as error:
            raise ChatError(f"cannot reach chatflow at {url} ({error}); is `chatflow dev` running?") from None
        out.write(f"Chatting with flow {flow} on {number} as {customer}. Type a message; Ctrl-D ends.\n")
        out.flush()
        printer = _Printer(http, customer, cursor, f"{flow}> ", out)
        printer.start()
        try:
            for line in stdin:
                text = line.rstrip("\n")
                if not text.strip():
                    continue
                sent = http.post("/console/messages", json={"from": customer, "to": number, "text": text})
                if sent.status_code >= 400:
                    out.write(f"! not sent ({sent.status_code}): {sent.text}\n")
                    out.flush()
        except KeyboardInterrupt:
            return
        printer.closing.set()
        printer.join()
