"""`chatflow chat`: talk to a flow from the terminal, through the console channel of a running app.

It starts with the conversation so far (what the bot sent this customer from that number, so a
conversation a journey started shows its prompt). Lines typed go to `POST /console/messages`; a
background task long-polls `GET /console/messages` and prints the bot's messages as they
arrive, including those a timer sends minutes later; another asks `GET
/console/conversations/{id}` whether the conversation has ended, and says how when it has.
Ctrl-D stops the long poll at once, shows the replies still on their way, and ends; so does
Ctrl-C, without waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import IO, Any

import httpx

from chatflow.domain.addresses import conversation_id, e164
from chatflow.domain.errors import ChatflowError

POLL_WAIT = 20.0  # seconds one read of the bot's messages waits for one
QUIET_AFTER_EOF = 1.5  # after the last line, show replies until the bot is quiet this long
BUSY_LIMIT = 30.0  # ...or, while the flow is still busy with what it was sent, at most this long
HISTORY = 20  # bot messages of the conversation so far shown at the start
STATUS_SOON = (0.3, 1.0, 2.0, 4.0)  # seconds after activity when the chat asks whether it has ended
STATUS_IDLE = 10.0  # and how often otherwise (a timer can end a conversation)


class ChatError(ChatflowError):
    pass


@dataclass
class Target:
    """The console number the chat writes to, and the flow bound to it."""

    number: str
    flow: str
    channel: str


def pick_target(numbers: list[dict[str, Any]], flow: str, number: str | None) -> Target:
    """The console number bound to `flow`; with `number`, that number, whatever flow it has."""
    listed = ", ".join(f"{e['number']} -> {e['flow']}" for e in numbers) or "none"
    if number:
        try:
            number = e164(number, what="--number")
        except ValueError as error:
            raise ChatError(str(error)) from None
        for entry in numbers:
            if entry["number"] == number:
                return Target(number, str(entry["flow"]), str(entry["channel"]))
        raise ChatError(f"{number} is not a console number of this app (console numbers: {listed})")
    for entry in numbers:
        if entry["flow"] == flow:
            return Target(str(entry["number"]), flow, str(entry["channel"]))
    raise ChatError(
        f"no console number is bound to flow {flow!r} (console numbers: {listed}). `chatflow dev` "
        f"binds one to every flow of the config's [flows] modules: is {flow!r} one of their flows "
        f"(`chatflow flows`)? With `chatflow web`, bind one in chatflow.toml: a [[numbers]] entry with "
        f'provider = "console" and flow = "{flow}"'
    )


class Screen:
    """What the terminal shows: the bot's messages under the flow's name, and notes."""

    def __init__(self, out: IO[str], prompt: str) -> None:
        self.out = out
        self.prompt = prompt

    def bot(self, text: str) -> None:
        pad = " " * len(self.prompt)
        lines = text.splitlines() or [""]
        self.write("\n".join([self.prompt + lines[0], *(pad + line for line in lines[1:])]))

    def note(self, text: str) -> None:
        self.write(text)

    def write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


class Conversation:
    """The customer's conversation on the console number, as the app reports it."""

    def __init__(self, http: httpx.AsyncClient, id: str, screen: Screen) -> None:
        self.http = http
        self.id = id
        self.screen = screen
        self.announced = ""  # the run whose end was shown
        self.busy = False  # running, with messages it has not handled yet

    async def status(self) -> dict[str, Any] | None:
        answer = await self.http.get(f"/console/conversations/{self.id}")
        if answer.status_code == 404:
            return None  # not started yet (or this app has no status route)
        answer.raise_for_status()
        status: dict[str, Any] = answer.json()
        return status

    async def check(self) -> bool:
        """Say so once when the conversation has ended; True when it has."""
        status = await self.status()
        if status is None:
            return False
        self.busy = bool(status.get("busy"))
        if status.get("state") != "ended":
            return False
        if status.get("run_id") != self.announced:
            self.announced = str(status.get("run_id", ""))
            reason = f" ({status['reason']})" if status.get("reason") else ""
            self.screen.note(f"-- conversation ended: {status.get('outcome') or 'ended'}{reason}; a message starts a new one")
        return True


async def _history(http: httpx.AsyncClient, customer: str, number: str) -> tuple[list[str], str]:
    """What the bot has sent this customer from `number` (the last HISTORY messages), and the
    cursor after it."""
    sent: list[str] = []
    cursor = "0"
    while True:
        answer = (
            await http.get("/console/messages", params={"customer": customer, "after": cursor})
        ).raise_for_status().json()
        sent += [m["text"] for m in answer["messages"] if m.get("number") == number]
        if not answer["messages"] or answer["next"] == cursor:
            return sent, cursor
        cursor = answer["next"]


def _lines(stdin: IO[str], loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Read stdin in a daemon thread (it may block for ever; Ctrl-C must not wait for it)."""

    def read() -> None:
        try:
            for line in stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has closed (Ctrl-C)
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="chat-stdin", daemon=True).start()


async def _chat(url: str, flow: str, customer: str, number: str | None, stdin: IO[str], out: IO[str]) -> None:
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=10) as http:
        try:
            numbers = (await http.get("/console/numbers")).raise_for_status().json()["numbers"]
            target = pick_target(numbers, flow, number)
            history, cursor = await _history(http, customer, target.number)
        except httpx.HTTPError as error:
            raise ChatError(f"cannot reach chatflow at {url} ({error}); is `chatflow dev` running?") from None
        screen = Screen(out, f"{target.flow}> ")
        if number and target.flow != flow:
            screen.note(f"({target.number} is bound to flow {target.flow}, not {flow})")
        screen.note(f"Chatting with flow {target.flow} on {target.number} as {customer}. Type a message; Ctrl-D ends.")
        if len(history) > HISTORY:
            screen.note(f"({len(history) - HISTORY} earlier messages not shown)")
        for text in history[-HISTORY:]:
            screen.bot(text)
        conversation = Conversation(http, conversation_id(target.channel, target.number, customer), screen)
        if history:
            with contextlib.suppress(httpx.HTTPError):
                await conversation.check()
        activity = asyncio.Event()

        async def read_replies() -> None:
            nonlocal cursor
            while True:
                try:
                    answer = (
                        await http.get(
                            "/console/messages",
                            params={"customer": customer, "after": cursor, "wait": POLL_WAIT},
                            timeout=POLL_WAIT + 10,
                        )
                    ).raise_for_status().json()
                except httpx.HTTPError as error:
                    screen.note(f"! cannot read the bot's messages: {error}")
                    await asyncio.sleep(2)
                    continue
                mine = [m for m in answer["messages"] if m.get("number") == target.number]
                for message in mine:
                    screen.bot(message["text"])
                cursor = answer["next"]
                if mine:
                    activity.set()

        async def watch_status() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(activity.wait(), STATUS_IDLE)
                activity.clear()
                for delay in STATUS_SOON:
                    await asyncio.sleep(delay)
                    if activity.is_set():
                        break  # more is going on: start over
                    with contextlib.suppress(httpx.HTTPError):
                        if await conversation.check():
                            break

        lines: asyncio.Queue[str | None] = asyncio.Queue()
        _lines(stdin, asyncio.get_running_loop(), lines)
        tasks = [asyncio.create_task(read_replies()), asyncio.create_task(watch_status())]
        try:
            while (line := await lines.get()) is not None:
                text = line.rstrip("\n")
                if not text.strip():
                    continue
                try:
                    sent = await http.post("/console/messages", json={"from": customer, "to": target.number, "text": text})
                except httpx.HTTPError as error:
                    screen.note(f"! not sent: {error}")
                    continue
                if sent.status_code >= 400:
                    screen.note(f"! not sent ({sent.status_code}): {sent.text}")
                activity.set()
        finally:
            for task in tasks:  # the long poll stops now, not when its wait is over
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await _last_replies(http, customer, cursor, target.number, screen, conversation)


async def _last_replies(
    http: httpx.AsyncClient, customer: str, cursor: str, number: str, screen: Screen, conversation: Conversation
) -> None:
    """After Ctrl-D: the replies still on their way, until the bot is quiet; then whether the
    conversation has ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_LIMIT
    with contextlib.suppress(httpx.HTTPError):
        while loop.time() < deadline:
            answer = (
                await http.get(
                    "/console/messages",
                    params={"customer": customer, "after": cursor, "wait": QUIET_AFTER_EOF},
                    timeout=QUIET_AFTER_EOF + 10,
                )
            ).raise_for_status().json()
            cursor = answer["next"]
            for message in answer["messages"]:
                if message.get("number") == number:
                    screen.bot(message["text"])
            ended = await conversation.check()
            if not answer["messages"] and (ended or not conversation.busy):
                return


def chat(url: str, flow: str, customer: str, number: str | None, stdin: IO[str], out: IO[str]) -> None:
    try:
        asyncio.run(_chat(url, flow, customer, number, stdin, out))
    except KeyboardInterrupt:
        out.write("\n")
        out.flush()
