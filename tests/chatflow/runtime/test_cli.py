"""The `chatflow` command as a user runs it: a subprocess, its output and exit status."""

import subprocess
import uuid
from pathlib import Path
from typing import cast

import pytest
from redis.asyncio import Redis

from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.buffer import encode
from chatflow.edge.dead_letters import list_dead_letters
from chatflow.runtime.processes import free_port, port_is_free
from tests.chatflow.runtime.devstack import DEMO_CONFIG, chatflow_command, chatflow_env
from tests.helpers import stream_add, stream_entries


def run(tmp_path: Path, *args: str, config: str = DEMO_CONFIG, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "chatflow.toml").write_text(config)
    return subprocess.run(
        chatflow_command(*args), capture_output=True, text=True, cwd=tmp_path, env=chatflow_env(**env), timeout=60
    )


def test_flows_lists_name_version_steps_and_description(tmp_path: Path) -> None:
    done = run(tmp_path, "flows")
    assert done.returncode == 0, done.stderr
    header, demo = done.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "STEPS", "DESCRIPTION"]
    assert demo.split()[:3] == ["demo", "1", "9"]  # its own 9, not the 4 built-in ends
    assert demo.endswith("A small shop assistant: opening hours, order status, or a human.")


def test_graph_writes_mermaid_to_stdout_and_svg_to_a_file(tmp_path: Path) -> None:
    done = run(tmp_path, "graph", "demo")
    assert done.returncode == 0 and done.stdout.startswith("stateDiagram-v2\n")
    done = run(tmp_path, "graph", "demo", "--format", "svg", "-o", "demo.svg")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "demo.svg").read_text().startswith("<svg")


BOUND = """
[flows]
modules = ["conversations.demo"]

[[numbers]]
number = "{number}"
provider = "{provider}"
flow = "{flow}"
"""


@pytest.mark.parametrize(
    ("command", "config", "says"),
    [
        (["graph", "nope"], DEMO_CONFIG, "error: unknown flow 'nope' (known flows: demo)"),
        (["graph", "demo", "--format", "gif"], DEMO_CONFIG, "error: unknown format 'gif'"),
        (
            ["worker"],
            BOUND.format(number="+15005550006", provider="console", flow="nope"),
            "error: chatflow.toml:8: +15005550006 is bound to unknown flow 'nope'",
        ),
        (
            ["web"],
            BOUND.format(number="5550006", provider="console", flow="demo"),
            "error: chatflow.toml:6: [[numbers]] entry 1: number '5550006' must be in E.164 form",
        ),
        (
            ["dev"],
            BOUND.format(number="+15005550006", provider="twilio", flow="demo"),
            "error: chatflow.toml binds numbers whose provider needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN",
        ),
        (
            ["flows"],
            '[flows]\nmodules = ["conversations.nope"]\n',
            "error: chatflow.toml:2: [flows] module 'conversations.nope' not found",
        ),
        (
            ["flows"],
            '[flows]\nmodules = ["conversations.demo"\n',
            "error: chatflow.toml:2: not valid TOML: Unclosed array",
        ),
        (
            ["flows"],
            '[flows]\nmodules = ["conversations.demo"]\nmodule = "x"\n',
            "error: chatflow.toml:3: [flows]: unknown key 'module'",
        ),
        (["flows", "--config", "missing.toml"], DEMO_CONFIG, "error: config file missing.toml not found"),
        (["chat", "demo", "--start", "--data", "[1]"], DEMO_CONFIG, "error: --data must be a JSON object"),
        (["chat", "demo", "--start", "--data", "{name"], DEMO_CONFIG, "error: --data is not valid JSON"),
        (["chat", "demo", "--data", "{}"], DEMO_CONFIG, "error: --data is the data of a journey: use it with --start"),
    ],
)
def test_mistakes_are_one_clear_line_and_exit_2(tmp_path: Path, command: list[str], config: str, says: str) -> None:
    done = run(tmp_path, *command, config=config)
    assert done.returncode == 2
    assert done.stderr.startswith(says), done.stderr
    assert "Traceback" not in done.stderr


BROKEN_CONFIG = '[flows]\nmodules = ["broken"]\n'
FLOW_HEAD = "from chatflow import Ask, End, Flow, yes\n\n\nclass Booking(Flow):\n"


@pytest.mark.parametrize(
    ("module", "says"),
    [
        (FLOW_HEAD + '    done = End("completed"\n', "error: broken.py:5: SyntaxError: '(' was never closed"),
        (
            "import os\nfrom chatflow import Nope\n",
            "error: broken.py:2: ImportError: cannot import name 'Nope' from 'chatflow'",
        ),
        (
            "import nowhere_to_be_found\n",
            "error: broken.py:1: ModuleNotFoundError: No module named 'nowhere_to_be_found'",
        ),
        (
            FLOW_HEAD
            + '    """Books."""\n\n    ask = Ask("Book?", branches={yes: "confirmd"})\n    confirmed = End("completed")\n',
            "error: broken.py:7: flow 'booking': step 'ask' leads to unknown step 'confirmd' (reply:yes)",
        ),
        (
            FLOW_HEAD + '    done = End("finished")\n',
            "error: broken.py:5: ValueError: outcome must be one of completed",
        ),
    ],
)
@pytest.mark.parametrize("command", [["flows"], ["graph", "booking"], ["dev", "--data-dir", "data"]])
def test_a_broken_flow_module_is_one_line_naming_its_file_and_line(
    tmp_path: Path, command: list[str], module: str, says: str
) -> None:
    (tmp_path / "broken.py").write_text(module)
    done = run(tmp_path, *command, config=BROKEN_CONFIG)
    assert done.returncode == 2
    assert done.stderr.startswith(says), done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "chatflow.toml" not in done.stderr


def boxes(drawing: str) -> list[tuple[str, float, float, float, float]]:
    """The steps' and the labels' rectangles of an SVG graph: (what, left, top, right, bottom)."""
    import xml.etree.ElementTree as ET

    found = []
    for rect in ET.fromstring(drawing).iter("{http://www.w3.org/2000/svg}rect"):
        if rect.get("fill") == "white" and rect.get("width") == "100%":
            continue  # the background
        x, y, w, h = (float(rect.get(k, "0")) for k in ("x", "y", "width", "height"))
        found.append(("step" if rect.get("fill") == "#eef4ff" else "label", x, y, x + w, y + h))
    return found


def overlaps(drawing: str) -> list[tuple[str, str]]:
    shapes = boxes(drawing)
    return [
        (f"{a[0]}@{a[1]:.0f},{a[2]:.0f}", f"{b[0]}@{b[1]:.0f},{b[2]:.0f}")
        for i, a in enumerate(shapes)
        for b in shapes[i + 1 :]
        if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
    ]


def test_svg_graphs_have_no_label_over_a_step_or_another_label(tmp_path: Path) -> None:
    import inspect

    import tests.flows
    from chatflow import Flow
    from chatflow.flows.graph import graph_of, svg
    from conversations.demo import Demo
    from conversations.payment_recovery import PaymentRecovery
    from conversations.purchase_followup import PurchaseFollowup

    done = run(tmp_path, "graph", "demo", "--format", "svg")
    assert done.returncode == 0, done.stderr
    assert len(boxes(done.stdout)) == len(graph_of(Demo).states) + len(graph_of(Demo).edges)
    assert overlaps(done.stdout) == []
    shapes = [Demo, PaymentRecovery, PurchaseFollowup] + [
        v for v in vars(tests.flows).values() if inspect.isclass(v) and issubclass(v, Flow) and v.steps
    ]
    for flow in shapes:
        drawing = svg(graph_of(flow))
        assert overlaps(drawing) == [], flow.name
        width, height = (float(v) for v in drawing.split('viewBox="0 0 ', 1)[1].split('"', 1)[0].split())
        assert all(
            0 <= left and right <= width and 0 <= top and bottom <= height
            for _, left, top, right, bottom in boxes(drawing)
        ), flow.name


def test_help_is_plain_text_with_its_defaults_and_no_type_beside_flags(tmp_path: Path) -> None:
    done = run(tmp_path, "dev", "--help")
    assert done.returncode == 0, done.stderr
    assert "<bool>" not in done.stdout and "│" not in done.stdout
    assert "--port <int>           Web app port [default: 8000, or a free one if taken]" in done.stdout
    assert "--log-json             Log JSON lines" in done.stdout
    for command in (
        "",
        "web",
        "worker",
        "chat",
        "flows",
        "graph",
        "record",
        "codec-server",
        "dead-letters",
        "dead-letters retry",
    ):
        shown = run(tmp_path, *command.split(), "--help")
        assert shown.returncode == 0 and "<bool>" not in shown.stdout, command


def dead_letter(text: str, reason: str = "Temporal refused it 5 times") -> dict[str, str]:
    """A dead letter as the forwarder puts one aside."""
    message = InboundMessage(
        id=f"console-{uuid.uuid4().hex}",
        channel="console",
        provider="console",
        customer="+14155550100",
        number="+15005550006",
        text=text,
    )
    return {"m": encode(message, "demo"), "reason": reason, "kind": "refused", "partition": "0"}


async def test_dead_letters_are_listed_and_retried_from_the_command_line(
    tmp_path: Path, redis: Redis, valkey_url: str
) -> None:
    fine = dead_letter("hello")
    first = await stream_add(redis, keys.inbox_dead(), fine)
    broken = await stream_add(
        redis, keys.inbox_dead(), {"m": "not a message", "reason": "cannot be read", "kind": "unreadable"}
    )
    again = await stream_add(redis, keys.inbox_dead(), dead_letter("and again"))

    def dead_letters(*args: str) -> subprocess.CompletedProcess[str]:
        return run(tmp_path, "dead-letters", *args, CHATFLOW_REDIS_URL=valkey_url)

    listed = dead_letters("list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "PUT", "ASIDE", "KIND", "CONVERSATION", "MESSAGE", "REASON"]
    assert [row.split()[0] for row in rows] == [first, broken, again]
    assert rows[0].split()[2:4] == ["refused", "chat:console:+15005550006:+14155550100"]
    assert rows[0].endswith("Temporal refused it 5 times")
    assert dead_letters("list", "--limit", "1").stdout.splitlines()[-1] == "(2 more; --limit shows more)"

    retried = dead_letters("retry", first)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.startswith(f"retried {first} (back in the buffer as ")
    buffered = [
        fields
        for stream in cast(list[str], await redis.keys("chatflow:inbox:*"))
        if stream != keys.inbox_dead()
        for _, fields in await stream_entries(redis, stream)
    ]
    assert buffered == [{"m": fine["m"], "retried": "1", "first": first}]

    # --all retries what it can and says what it cannot, with exit status 1.
    everything = dead_letters("retry", "--all")
    assert everything.returncode == 1
    lines = everything.stdout.splitlines()
    assert lines[0].startswith(f"not retried {broken}: dead letter {broken} cannot be read")
    assert lines[1].startswith(f"retried {again} ")
    assert [d.id for d in await list_dead_letters(redis)] == [broken]

    unknown = dead_letters("retry", first)
    assert (unknown.returncode, unknown.stdout) == (1, f"not retried {first}: no dead letter {first}\n")
    neither = dead_letters("retry")
    assert neither.returncode == 2 and neither.stderr.startswith("error: name the dead letters to retry")
    nowhere = run(tmp_path, "dead-letters", "list", "--data-dir", str(tmp_path / "none"))
    assert nowhere.returncode == 2 and nowhere.stderr.startswith("error: no Redis: set CHATFLOW_REDIS_URL")


def test_the_codec_server_refuses_to_start_without_a_key_to_decode_or_to_ask(tmp_path: Path) -> None:
    done = run(tmp_path, "codec-server", CHATFLOW_PAYLOAD_KEY="", CHATFLOW_API_KEY="k")
    assert done.returncode == 2 and done.stderr.startswith("error: CHATFLOW_PAYLOAD_KEY is not set"), done.stderr
    key = "k1:" + "A" * 43 + "="
    done = run(tmp_path, "codec-server", CHATFLOW_PAYLOAD_KEY=key, CHATFLOW_API_KEY="")
    assert done.returncode == 2 and done.stderr.startswith("error: CHATFLOW_API_KEY is not set"), done.stderr
    done = run(
        tmp_path, "codec-server", "--no-auth", "--host", "0.0.0.0", CHATFLOW_PAYLOAD_KEY=key, CHATFLOW_API_KEY=""
    )
    assert done.returncode == 2 and "only on a loopback --host, not 0.0.0.0" in done.stderr, done.stderr
    done = run(tmp_path, "codec-server", CHATFLOW_PAYLOAD_KEY="k1:short", CHATFLOW_API_KEY="k")
    assert done.returncode == 2 and "error: CHATFLOW_PAYLOAD_KEY: key 'k1'" in done.stderr, done.stderr


LATE_FLOW = '''
from chatflow import Delay, End, Flow, Say, days


class Late(Flow):
    """Says something two days after a journey starts, with no template."""

    wait = Delay(days(2))
    late = Say("Two days later")
    done = End("completed")
'''


def test_check_lists_free_text_outside_the_window_and_fails_and_passes_the_shipped_flows(tmp_path: Path) -> None:
    (tmp_path / "late_flows.py").write_text(LATE_FLOW)
    config = '[flows]\nmodules = ["late_flows", "conversations.payment_recovery", "conversations.purchase_followup"]\n'
    done = run(tmp_path, "check", config=config)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "late.late (Say) may send free text outside WhatsApp's 24-hour window (a conversation the business "
        "starts) and has no template=: wait -(next)-> late"
    ]
    shipped = run(tmp_path, "check")
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr


def test_secrets_are_checked_by_the_commands_that_run_conversations_only(tmp_path: Path) -> None:
    """As the README says: dev, web and worker refuse a provider bound without its secrets;
    flows and graph, which only read the flows, need none."""
    unset = BOUND.format(number="+15005550006", provider="twilio", flow="demo")
    for command in (["web"], ["worker"]):
        done = run(tmp_path, *command, config=unset)
        assert done.returncode == 2, (command, done.stderr)
        assert "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN" in done.stderr
    # dev checks once its own servers (and its mail catcher) are up, and stops them again.
    ports = [str(free_port()) for _ in range(4)]
    data = tmp_path / "data"
    options = ["--data-dir", str(data), "--port", ports[0], "--temporal-port", ports[1], "--ui-port", ports[2]]
    started = run(tmp_path, "dev", *options, "--redis-port", ports[3], config=unset)
    assert started.returncode == 2, started.stderr
    assert (
        started.stderr.strip()
        .splitlines()[-1]
        .endswith("binds numbers whose provider needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN in the environment")
    )
    assert all(port_is_free("127.0.0.1", int(port)) for port in ports[1:])  # Temporal, its UI, Valkey stopped
    listed = run(tmp_path, "flows", config=unset)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].startswith("demo"), listed.stderr
    drawn = run(tmp_path, "graph", "demo", config=unset)
    assert drawn.returncode == 0 and drawn.stdout.startswith("stateDiagram-v2"), drawn.stderr


SHOP_FLOW = '''
from chatflow import Ask, Choice, End, Flow, Say


class Shop(Flow):
    """Greets and asks."""

    hello = Say("Hello {name}!", template="hello")
    menu = Ask("Pick one", choices=[Choice("Shoes", "done"), Choice("Hats", "done")], template="pick")
    done = End("completed", "Bye")
'''


def test_i18n_extract_update_compile_and_check_lists_the_untranslated_text(tmp_path: Path) -> None:
    from babel.messages import pofile

    (tmp_path / "shop_flows.py").write_text(SHOP_FLOW)
    config = '[flows]\nmodules = ["shop_flows"]\n'
    extracted = run(tmp_path, "i18n", "extract", config=config)
    assert extracted.returncode == 0, extracted.stderr
    assert extracted.stdout == f"wrote {tmp_path / 'locales' / 'shop.pot'}\n"
    po = tmp_path / "locales" / "es" / "LC_MESSAGES" / "shop.po"
    nothing = run(tmp_path, "i18n", "update", config=config)
    assert nothing.returncode == 0 and "start one with --locale" in nothing.stderr
    started = run(tmp_path, "i18n", "update", "--locale", "es", config=config)
    assert started.returncode == 0, started.stderr
    assert started.stdout == f"wrote {po}\n"
    with po.open("rb") as file:
        catalog = pofile.read_po(file)
    assert catalog.get("Hello {name}!").locations == [("shop.hello", None)]  # type: ignore[union-attr]
    # A translator translates all but one.
    for message in catalog:
        message.string = {
            "Hello {name}!": "¡Hola {name}!",
            "Pick one": "Elige uno",
            "Shoes": "Zapatos",
            "Bye": "Adiós",
        }.get(str(message.id), message.string)
    with po.open("wb") as file:
        pofile.write_po(file, catalog)
    stale = run(tmp_path, "check", config=config)
    assert "es: shop.* (catalogue) not compiled since it changed: 'shop.po'" in stale.stdout.splitlines()
    compiled = run(tmp_path, "i18n", "compile", config=config)
    assert compiled.returncode == 0, compiled.stderr
    assert compiled.stdout == f"wrote {po.with_suffix('.mo')}\n"
    checked = run(tmp_path, "check", config=config)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        "every step that may run outside WhatsApp's 24-hour window has a template",
        "es: shop.menu (Choice title) untranslated: 'Hats'",
    ]
    assert "1 text(s) untranslated: they go in the flow's language" in checked.stderr
