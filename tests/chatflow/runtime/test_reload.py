"""`chatflow dev --reload`: a flow edited and saved answers the next message with the new code,
the conversations the edit would break are named first, and a mistake keeps the code running."""

import time
from pathlib import Path

import pytest

from chatflow.domain.addresses import ConversationRef, mask_addresses
from tests.chatflow.runtime.devstack import DevStack, start_dev

CONFIG = """\
[flows]
modules = ["greeting"]

[[numbers]]
number = "+15005550006"
provider = "console"
channel = "console"
flow = "greeting"
"""
V1 = """\
from chatflow import Ask, End, Flow, anything


class Greeting(Flow):
    hello = Ask("Hello from v1! Your name?", branches={anything: "bye"}, save_as="name")
    bye = End("completed", "Bye {name}.")
"""
# A step inserted before the question: conversations already past it cannot replay.
V2 = """\
from chatflow import Ask, End, Flow, Say, anything


class Greeting(Flow):
    welcome = Say("Welcome to v2!")
    hello = Ask("Hello from v2! Your name?", branches={anything: "bye"}, save_as="name")
    bye = End("completed", "Bye {name}.")
"""


def printed(stack: DevStack) -> str:
    return stack.stdout.read_text(errors="replace")


def until_said(stack: DevStack, text: str, after: int) -> str:
    """What chatflow dev printed after its first `after` characters, once it holds `text`."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        output = printed(stack)[after:]
        if text in output:
            return output
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in chatflow dev's output:\n{stack.output()}")


def test_an_edited_flow_answers_the_next_message_after_naming_what_it_breaks(tmp_path: Path) -> None:
    module = tmp_path / "greeting.py"
    module.write_text(V1)
    stack = start_dev(tmp_path / "data", tmp_path / "logs", "--reload", config_text=CONFIG)
    waiting, newcomer, later = "+14155550131", "+14155550132", "+14155550133"
    try:
        stack.say("hi", customer=waiting)
        stack.wait_for("Hello from v1!", customer=waiting)
        seen = len(printed(stack))

        module.write_text(V2)
        output = until_said(stack, "reloaded: flows greeting@1", seen)
        assert "reloading: greeting.py changed" in output
        breaks = mask_addresses(ConversationRef("console", "+15005550006", waiting).id)
        assert (
            f"warning: this change breaks 1 running conversation(s), which would fail at their next step: {breaks}."
            in output
        )
        stack.say("hi", customer=newcomer)
        assert stack.wait_for("Hello from v2!", customer=newcomer) == ["Welcome to v2!", "Hello from v2! Your name?"]

        # A mistake: one error line, and the code from before answers on.
        seen = len(printed(stack))
        module.write_text(V2.replace('"Welcome to v2!")', '"Welcome to v2!"'))
        output = until_said(stack, "still running the code from before", seen)
        assert "error: greeting.py:" in output and "SyntaxError" in output
        stack.say("hi", customer=later)
        assert stack.wait_for("Hello from v2!", customer=later)[0] == "Welcome to v2!"
    finally:
        assert stack.stop() == 0, stack.output()
    assert "Traceback" not in stack.output()


async def test_a_compiled_catalogue_beside_a_flow_module_is_a_change_to_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chatflow i18n compile` while `chatflow dev --reload` runs: the new .mo is a change, as a
    saved flow is (the next worker reads it); a .po being edited is not yet."""
    import asyncio
    import importlib

    from chatflow.runtime.reload import Watched

    (tmp_path / "shop_flows.py").write_text("SHOP = 1\n")
    messages = tmp_path / "locales" / "es" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("shop_flows")
    watched = Watched(str(tmp_path / "chatflow.toml"), ["shop_flows"])
    stop = asyncio.Event()
    queue: asyncio.Queue[list[Path]] = asyncio.Queue()
    watcher = asyncio.create_task(watched.changes(stop, queue))
    try:
        # The watch starts in the background: save until it reports (each save is a change).
        for attempt in range(100):
            (messages / "shop.po").write_text(f"# edit {attempt}\n")
            (messages / "shop.mo").write_bytes(b"compiled %d" % attempt)
            try:
                changed = await asyncio.wait_for(queue.get(), 0.2)
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("the compiled catalogue's change was never reported")
        assert changed == [(messages / "shop.mo").resolve()]
    finally:
        stop.set()
        watcher.cancel()
