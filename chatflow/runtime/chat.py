"""`chatflow chat`: talk to a flow from the terminal, through the console channel of a running app.

It starts with the conversation so far: the transcript the journeys API keeps (`GET
/api/conversations/{id}`, the customer's lines as `you> ...`) when the chat has the API key (the
running `chatflow dev`'s, or CHATFLOW_API_KEY), else what the bot sent this customer from that
number. With `start`, it first starts the flow as a journey for this customer (`POST
/api/conversations`, the business's initiative), so the flow speaks first. Lines typed go to
`POST /console/messages`; a background task long-polls `GET /console/messages` and prints the
bot's messages as they arrive, including those a timer sends minutes later; another asks `GET
/console/conversations/{id}` whether the conversation has ended, and says how when it has.
Ctrl-D stops the long poll at once, shows the replies still on their way, and ends; so does
Ctrl-C, without waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

from chatflow.domain.addresses import ConversationRef, e164
from chatflow.domain.errors import ChatflowError
from chatflow.domain.messages import Option, numbered_menu
from chatflow.web.landing import MAIL_PATH

POLL_WAIT = 20.0  # seconds one read of the bot's messages waits for one
QUIET_AFTER_EOF = 1.5  # after the last line, show replies until the bot is quiet this long
BUSY_LIMIT = 30.0  # ...or, while the flow is still busy with what it was sent, at most this long
HISTORY = 20  # lines of the conversation so far shown at the start
STATUS_SOON = (0.3, 1.0, 2.0, 4.0)  # seconds after activity when the chat asks whether it has ended
STATUS_IDLE = 10.0  # and how often otherwise (a timer can end a conversation)
CUSTOMER_PROMPT = "you> "  # the customer's own lines in the conversation so far
AWAY_RETRY = 1.0  # seconds between tries while the app does not answer
MAIL_PROMPT = "email> "  # an email chatflow dev caught


class ChatError(ChatflowError):
    pass


@dataclass
class ChatOptions:
    url: str
    flow: str
    customer: str
    number: str | None = None  # a console number to write to, whatever flow it has
    api_key: str = ""  # the journeys API's: the transcript, and `start`
    start: bool = False  # start `flow` as a journey for `customer` before chatting
    data: dict[str, Any] = field(default_factory=dict)  # the journey's data


@dataclass
class Target:
    """The console number the chat writes to, and the flow bound to it."""

    number: str
    flow: str
    channel: str


async def _console_numbers(http: httpx.AsyncClient, url: str, flow: str) -> list[dict[str, Any]]:
    """The app's console numbers and their flows; an app that is no chatflow is refused."""
    elsewhere = (
        f"start `chatflow dev` in the folder whose chatflow.toml lists flow {flow!r}, "
        f"or pass --url (or --data-dir) of the app that serves it"
    )
    try:
        answer = await http.get("/console/numbers")
    except httpx.HTTPError as error:
        raise ChatError(f"cannot reach chatflow at {url} ({_why(error)}); {elsewhere}") from None
    try:
        numbers = answer.raise_for_status().json()["numbers"]
        if not isinstance(numbers, list):
            raise TypeError(numbers)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        raise ChatError(
            f"the app at {url} is not chatflow (GET /console/numbers answered {answer.status_code} "
            f"{answer.reason_phrase}, not chatflow's list of console numbers): another project's? {elsewhere}"
        ) from None
    return numbers


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
        f"(`chatflow flows`)? If this is another project's app, start `chatflow dev` in the folder whose "
        f"chatflow.toml lists {flow!r} (on another --port if this one is taken), then `chatflow chat {flow}` "
        f"there. With `chatflow web`, bind one in chatflow.toml: a [[numbers]] entry with "
        f'provider = "console" and flow = "{flow}"'
    )


class Screen:
    """What the terminal shows: the bot's messages under the flow's name, and notes."""

    def __init__(self, out: IO[str], prompt: str) -> None:
        self.out = out
        self.prompt = prompt

    def bot(self, text: str) -> None:
        self.said(self.prompt, text)

    def customer(self, text: str) -> None:
        self.said(CUSTOMER_PROMPT, text)

    def said(self, prompt: str, text: str) -> None:
        pad = " " * len(prompt)
        lines = text.splitlines() or [""]
        self.write("\n".join([prompt + lines[0], *(pad + line if line else "" for line in lines[1:])]))

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
        self.ended = False  # it had ended when last asked
        self.typed_after_end = False  # a line was sent after that end, and no new run seen yet

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
        self.ended = status.get("state") == "ended"
        if not self.ended or status.get("run_id") != self.announced:
            self.typed_after_end = False  # the line sent after the end has its own run now
        if not self.ended:
            return False
        if status.get("run_id") != self.announced:
            self.announced = str(status.get("run_id", ""))
            reason = f" ({status['reason']})" if status.get("reason") else ""
            self.screen.note(
                f"-- conversation ended: {status.get('outcome') or 'ended'}{reason}; a message starts a new one"
            )
        return True


async def _history(http: httpx.AsyncClient, customer: str, number: str) -> tuple[list[str], str]:
    """What the bot has sent this customer from `number`, and the cursor after it."""
    sent: list[str] = []
    cursor = "0"
    while True:
        answer = (
            (await http.get("/console/messages", params={"customer": customer, "after": cursor}))
            .raise_for_status()
            .json()
        )
        sent += [m["text"] for m in answer["messages"] if m.get("number") == number]
        if not answer["messages"] or answer["next"] == cursor:
            return sent, cursor
        cursor = answer["next"]


def _bot_text(turn: dict[str, Any]) -> str:
    """A bot's line of the transcript as the console showed it (choices as a numbered menu)."""
    text = numbered_menu(str(turn.get("text", "")), [Option(id="", title=str(t)) for t in turn.get("options", [])])
    if turn.get("status") == "failed":
        code = f" ({turn['error_code']})" if turn.get("error_code") else ""
        text += f"\n[not sent{code}]"
    return text


class Echoes:
    """The bot's last lines shown from the transcript, which the live read may bring again: the
    transcript is read after the live read's starting point, so a message sent in between is in
    both. A live message equal to one of them is that message, shown already."""

    def __init__(self, texts: list[str] | None = None) -> None:
        self.texts = texts or []

    def seen(self, text: str) -> bool:
        if text in self.texts:
            del self.texts[: self.texts.index(text) + 1]
            return True
        self.texts.clear()  # a new message: what follows it is new too
        return False


async def _so_far(
    http: httpx.AsyncClient, options: ChatOptions, target: Target, id: str, screen: Screen
) -> tuple[bool, str, Echoes]:
    """Show the conversation so far; whether there was one, the cursor to read the bot's next
    messages from, and the echoes to skip."""
    cursor = await _latest(http, options.customer)
    if options.api_key:
        answer = await http.get(f"/api/conversations/{id}", headers=_auth(options.api_key))
        if answer.status_code == 404:
            return False, cursor, Echoes()
        if answer.status_code < 400:
            turns: list[dict[str, Any]] = answer.json().get("transcript", [])
            if len(turns) > HISTORY:
                screen.note(f"({len(turns) - HISTORY} earlier messages not shown)")
            for turn in turns[-HISTORY:]:
                if turn.get("direction") == "in":
                    screen.customer(str(turn.get("text", "")))
                else:
                    screen.bot(_bot_text(turn))
            last_in = max((i for i, t in enumerate(turns) if t.get("direction") == "in"), default=-1)
            return bool(turns), cursor, Echoes([_bot_text(t) for t in turns[last_in + 1 :]])
        why = f"the journeys API refused the key: {_reason(answer)}"
    else:
        why = "your own lines need the journeys API key: --api-key or CHATFLOW_API_KEY"
    history, cursor = await _history(http, options.customer, target.number)
    if history:
        screen.note(f"(the bot's messages only; {why})")
    if len(history) > HISTORY:
        screen.note(f"({len(history) - HISTORY} earlier messages not shown)")
    for text in history[-HISTORY:]:
        screen.bot(text)
    return bool(history), cursor, Echoes()


async def _latest(http: httpx.AsyncClient, customer: str) -> str:
    """The cursor after the last message the bot has sent this customer."""
    answer = await http.get("/console/messages", params={"customer": customer, "after": "latest"})
    return str(answer.raise_for_status().json()["next"])


async def _start(http: httpx.AsyncClient, options: ChatOptions, target: Target, screen: Screen) -> None:
    """Start the flow as a journey for the chat's customer, as the business's backend would."""
    if not options.api_key:
        raise ChatError(
            "--start needs the journeys API key: --api-key or CHATFLOW_API_KEY (`chatflow dev` prints it and keeps it "
            "in its data folder, where the chat finds it)"
        )
    body = {"flow": options.flow, "to": options.customer, "from": target.number, "data": options.data}
    answer = await http.post("/api/conversations", json=body, headers=_auth(options.api_key))
    if answer.status_code == 409:
        screen.note(f"! not started: {_reason(answer)}")
        return
    if answer.status_code >= 400:
        raise ChatError(f"cannot start flow {options.flow!r}: {_reason(answer)}")
    started = answer.json()
    interrupted = f", ending flow {started['interrupted']}" if started.get("interrupted") else ""
    screen.note(
        f"-- journey {started.get('status', 'started')}: flow {options.flow} for {options.customer}{interrupted}"
    )


def _why(error: httpx.HTTPError) -> str:
    """A connection error in a few words (httpx's own text can be a page of errno detail)."""
    if isinstance(error, httpx.HTTPStatusError):
        return _reason(error.response)
    if isinstance(error, httpx.ConnectError):
        return "connection refused"
    return type(error).__name__


def _auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def _reason(answer: httpx.Response) -> str:
    try:
        return str(answer.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"{answer.status_code} {answer.text[:200]}"


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


async def _chat(options: ChatOptions, stdin: IO[str], out: IO[str]) -> None:
    url = options.url
    # The key on every request: `chatflow web --console` serves the console behind it.
    headers = _auth(options.api_key) if options.api_key else {}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=10, headers=headers) as http:
        numbers = await _console_numbers(http, url, options.flow)
        # A journey may be any flow, started from any number: with --start the chat is FLOW's.
        try:
            target = pick_target(numbers, options.flow, options.number)
        except ChatError as error:
            raise ChatError(f"the app at {url}: {error}") from None
        flow = options.flow if options.start else target.flow
        screen = Screen(out, f"{flow}> ")
        if options.number and target.flow != options.flow and not options.start:
            screen.note(f"({target.number} is bound to flow {target.flow}, not {options.flow})")
        screen.note(
            f"Chatting with flow {flow} on {target.number} at {url} as {options.customer}. Type a message; Ctrl-D ends."
        )
        conversation = Conversation(http, ConversationRef(target.channel, target.number, options.customer).id, screen)
        try:
            if options.start:
                cursor, echoes, before = await _latest(http, options.customer), Echoes(), False
                await _start(http, options, target, screen)
            else:
                before, cursor, echoes = await _so_far(http, options, target, conversation.id, screen)
        except httpx.HTTPError as error:
            raise ChatError(f"cannot reach chatflow at {url} ({error}); is `chatflow dev` running?") from None
        if before:
            with contextlib.suppress(httpx.HTTPError):
                await conversation.check()
        customer = options.customer
        activity = asyncio.Event()
        away = asyncio.Event()  # the app stopped answering, and has not answered since

        async def read_replies() -> None:
            nonlocal cursor
            while True:
                try:
                    answer = (
                        (
                            await http.get(
                                "/console/messages",
                                params={"customer": customer, "after": cursor, "wait": POLL_WAIT},
                                timeout=POLL_WAIT + 10,
                            )
                        )
                        .raise_for_status()
                        .json()
                    )
                except httpx.HTTPError as error:
                    if not away.is_set():  # once, not every retry: the app may be restarting
                        away.set()
                        screen.note(
                            f"-- chatflow at {url} is not answering ({_why(error)}); waiting for it, Ctrl-D ends"
                        )
                    await asyncio.sleep(AWAY_RETRY)
                    continue
                if away.is_set():
                    away.clear()
                    screen.note(f"-- chatflow at {url} is answering again")
                mine = [m for m in answer["messages"] if m.get("number") == target.number]
                for message in mine:
                    if not echoes.seen(message["text"]):
                        screen.bot(message["text"])
                cursor = answer["next"]
                if mine:
                    activity.set()

        async def watch_status() -> None:
            while True:
                # Not asyncio.wait_for: before Python 3.12 it swallows a cancel that comes as
                # the event is set (a line typed, then end of input), and the chat never ended.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STATUS_IDLE):
                        await activity.wait()
                activity.clear()
                for delay in STATUS_SOON:
                    await asyncio.sleep(delay)
                    if activity.is_set():
                        break  # more is going on: start over
                    with contextlib.suppress(httpx.HTTPError):
                        if await conversation.check():
                            break

        sent = options.start  # something the bot may still be answering
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        _lines(stdin, asyncio.get_running_loop(), lines)
        tasks = [asyncio.create_task(t) for t in (read_replies(), watch_status(), read_mail(http, screen))]
        try:
            while (line := await lines.get()) is not None:
                text = line.rstrip("\n")
                if not text.strip():
                    continue
                try:
                    posted = await http.post(
                        "/console/messages", json={"from": customer, "to": target.number, "text": text}
                    )
                except httpx.HTTPError as error:
                    screen.note(f"! not sent: {error}")
                    continue
                if posted.status_code >= 400:
                    screen.note(f"! not sent ({posted.status_code}): {posted.text}")
                sent = True
                conversation.typed_after_end = conversation.ended  # a message after the end starts a new one
                activity.set()
        finally:
            for task in tasks:  # the long poll stops now, not when its wait is over
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await _last_replies(http, customer, cursor, target.number, screen, conversation, echoes, sent)


async def read_mail(http: httpx.AsyncClient, screen: Screen) -> None:
    """Show the emails `chatflow dev` catches from now on (a flow's `Notify` by email), whoever
    they are to; nothing when the app catches none (not chatflow dev, or mail is configured)."""
    after: int | None = None  # the first read only learns how many were caught before
    while True:
        wait = POLL_WAIT if after is not None else 0
        try:
            answer = await http.get(MAIL_PATH, params={"after": after or 0, "wait": wait}, timeout=wait + 10)
        except httpx.HTTPError:
            await asyncio.sleep(2)
            continue
        if answer.status_code == 404:
            return
        if answer.status_code >= 400:
            await asyncio.sleep(2)
            continue
        caught = answer.json()
        if after is not None:
            for email in caught["emails"]:
                screen.said(MAIL_PROMPT, f"to {', '.join(email['to'])}: {email['subject']}\n{email['text']}")
        after = int(caught["next"])


async def _last_replies(
    http: httpx.AsyncClient,
    customer: str,
    cursor: str,
    number: str,
    screen: Screen,
    conversation: Conversation,
    echoes: Echoes,
    sent: bool,
) -> None:
    """After Ctrl-D: the replies still on their way, until the bot is quiet; then whether the
    conversation has ended. When the chat sent nothing, or the conversation has ended since, only
    what a busy flow is still doing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_LIMIT
    over = conversation.ended and not conversation.typed_after_end  # nothing more can come
    quiet = QUIET_AFTER_EOF if sent and not over else 0.0
    with contextlib.suppress(httpx.HTTPError):
        while loop.time() < deadline:
            answer = (
                (
                    await http.get(
                        "/console/messages",
                        params={"customer": customer, "after": cursor, "wait": quiet},
                        timeout=quiet + 10,
                    )
                )
                .raise_for_status()
                .json()
            )
            quiet = QUIET_AFTER_EOF
            cursor = answer["next"]
            for message in answer["messages"]:
                if message.get("number") == number and not echoes.seen(message["text"]):
                    screen.bot(message["text"])
            ended = await conversation.check()
            if not answer["messages"] and (ended or not conversation.busy):
                return


def chat(options: ChatOptions, stdin: IO[str], out: IO[str]) -> None:
    try:
        asyncio.run(_chat(options, stdin, out))
    except KeyboardInterrupt:
        out.write("\n")
        out.flush()
