"""The documentation: README.md and the MkDocs site under docs/.

Every code block in them is run by a test or says why not: the line before it is
`<!-- run: NAME -->`, and a test fetches it with `snippet("NAME")` (the check below greps the
tests for that call), or `<!-- not run: REASON -->`. The site builds with `mkdocs build
--strict` (a broken link or anchor fails it), and its settings reference is the code's list.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
MARKER = re.compile(r"<!-- (run|not run): (.+?) -->")
FENCE = re.compile(r"^([ \t]*)(`{3,})([\w-]*)[^\n]*$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository
    line: int  # of its opening fence
    language: str
    text: str  # dedented, as a user would copy it
    marker: tuple[str, str] | None  # ("run", name) or ("not run", reason)


def blocks_of(text: str, page: str = "") -> list[Block]:
    """The fenced code blocks of a Markdown text, each with the marker on the line before it."""
    lines = text.splitlines()
    found: list[Block] = []
    at = 0
    while at < len(lines):
        opening = FENCE.match(lines[at])
        if not opening:
            at += 1
            continue
        indent, fence, language = opening.groups()
        end = next(
            (i for i in range(at + 1, len(lines)) if lines[i].strip() == fence and lines[i].startswith(indent)),
            len(lines),
        )
        body = textwrap.dedent("\n".join(lines[at + 1 : end])) + "\n"
        before = next((lines[i].strip() for i in range(at - 1, -1, -1) if lines[i].strip()), "")
        marked = MARKER.fullmatch(before)
        marker = (marked.group(1), marked.group(2)) if marked else None
        found.append(Block(page, at + 1, language, body, marker))
        at = end + 1
    return found


def all_blocks() -> list[Block]:
    return [
        block for path in PAGES for block in blocks_of(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]


def snippet(name: str) -> str:
    """The code block marked `<!-- run: NAME -->`, as a user would copy it."""
    (found,) = [block.text for block in all_blocks() if block.marker == ("run", name)]
    return found


def page(name: str) -> str:
    """A page of the site (`cli.md`), or README.md."""
    return (ROOT / name if name == "README.md" else ROOT / "docs" / name).read_text(encoding="utf-8")


def unrun(blocks: list[Block], tests: str) -> list[str]:
    """What is wrong with the blocks' markers, given the tests' source: a block with no marker, a
    name given twice, a name no test fetches with `snippet("NAME")`."""
    wrong = []
    names = [block.marker[1] for block in blocks if block.marker and block.marker[0] == "run"]
    for block in blocks:
        where = f"{block.page}:{block.line}"
        if block.marker is None:
            wrong.append(f"{where}: no <!-- run: NAME --> or <!-- not run: REASON --> before this block")
        elif block.marker[0] == "run" and names.count(block.marker[1]) > 1:
            wrong.append(f"{where}: the name {block.marker[1]!r} is given to several blocks")
        elif block.marker[0] == "run" and f'snippet("{block.marker[1]}")' not in tests:
            wrong.append(f'{where}: no test calls snippet("{block.marker[1]}")')
    return wrong


def test_every_code_block_is_run_by_a_test_or_says_why_not() -> None:
    tests = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("*.py"))
    blocks = all_blocks()
    assert len(blocks) > 20
    assert unrun(blocks, tests) == []


def test_an_unmarked_or_unrun_block_is_reported() -> None:
    text = "Intro\n\n```bash\nchatflow flows\n```\n\n1. A step:\n   <!-- run: nobody-runs-me -->\n   ```toml\n   a = 1\n   ```\n"
    assert unrun(blocks_of(text, "x.md"), tests="") == [
        "x.md:3: no <!-- run: NAME --> or <!-- not run: REASON --> before this block",
        'x.md:9: no test calls snippet("nobody-runs-me")',
    ]
    assert blocks_of(text)[1].text == "a = 1\n"  # as a user copies it, out of the list item
    assert unrun(blocks_of(text, "x.md"), tests='snippet("nobody-runs-me")')[1:] == []


def test_every_page_is_in_the_sites_nav() -> None:
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(entries: list[object]) -> set[str]:
        found: set[str] = set()
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            found |= pages(value) if isinstance(value, list) else {str(value)}
        return found

    assert pages(config["nav"]) == {path.name for path in PAGES if path.name != "README.md"}
    assert config["theme"]["font"] is False  # nothing fetched from Google at build or read time


def test_the_site_builds_strict_with_the_readme_as_its_home_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'id="write-your-first-flow"' in home
    assert 'href="flows/"' in home  # README's links into docs/, made the site's own
    assert "<!-- run:" not in home
    twilio = (site / "twilio" / "index.html").read_text(encoding="utf-8")
    assert twilio.count("<ol>") == 2  # a block's marker does not break the numbered steps
    assert "CHATFLOW_CALLBACK_SECRET" in (site / "settings" / "index.html").read_text(encoding="utf-8")


def settings_reference() -> str:
    text = page("settings.md")
    return text.split("<!-- settings-reference: start -->\n", 1)[1].split("\n<!-- settings-reference: end -->", 1)[0]


def test_the_settings_reference_is_the_codes_list_of_settings() -> None:
    from chatflow.runtime.config import settings_markdown

    assert settings_reference() == settings_markdown(), (
        "docs/settings.md is out of date: put the output of "
        "python -c 'from chatflow.runtime.config import settings_markdown; print(settings_markdown(), end=\"\")' "
        "between its settings-reference markers"
    )


def test_the_settings_reference_names_every_setting_the_code_reads() -> None:
    import providers

    read = {
        name
        for folder in ("chatflow", "providers")
        for path in (ROOT / folder).rglob("*.py")
        for name in re.findall(r"[\"'](CHATFLOW_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8"))
    }
    read |= {name for spec in providers.CHANNELS for name in spec.environment}
    assert {"CHATFLOW_CALLBACK_URL", "CHATFLOW_CALLBACK_SECRET", "CHATFLOW_WHATSAPP_API_VERSION"} <= read
    shown = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", settings_reference()))
    assert sorted(read - shown) == []
    # and names nothing the code does not read (Temporal's own variables aside)
    own = {name for name in shown if name.startswith("CHATFLOW_") and not name.endswith("_")}
    assert sorted(own - read) == []


def test_every_setting_says_what_it_is() -> None:
    from chatflow.runtime.config import settings_reference

    assert [setting.name for setting in settings_reference() if not setting.doc.strip()] == []


def test_each_channels_rows_name_exactly_the_settings_it_reads() -> None:
    import providers

    rows = re.findall(r"^\| `(\w+)` \| (.*?) \|", settings_reference(), re.M)
    for spec in providers.CHANNELS:
        named = {
            name
            for channel, cells in rows
            if channel == spec.name
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells)
        }
        assert named == set(spec.environment), spec.name


# The snippets of the site's pages, run.


def test_the_channel_pages_configs_bind_their_numbers() -> None:
    from chatflow.domain.config import Settings
    from chatflow.runtime.config import parse_config

    secrets = Settings.from_env(
        {
            "TWILIO_ACCOUNT_SID": "AC0123",
            "TWILIO_AUTH_TOKEN": "token",
            "WHATSAPP_ACCESS_TOKEN": "token",
            "WHATSAPP_APP_SECRET": "secret",
            "WHATSAPP_VERIFY_TOKEN": "my-verify-token",
        }
    )
    flows = '[flows]\nmodules = ["conversations.demo"]\n\n'
    for text, provider, channel, number in (
        (snippet("twilio-sms-config"), "twilio", "sms", "+15005550006"),
        (snippet("twilio-whatsapp-config"), "twilio", "whatsapp", "+14155238886"),
        (snippet("whatsapp-cloud-config"), "whatsapp_cloud", "whatsapp", "+15550001111"),
    ):
        (binding,) = parse_config(flows + text, secrets).numbers
        assert (binding.provider, binding.channel, binding.number, binding.flow) == (provider, channel, number, "demo")
    (cloud,) = parse_config(flows + snippet("whatsapp-cloud-config"), secrets).numbers
    assert cloud.options == {"phone_number_id": "106540352242922"}


def test_the_source_and_sink_pages_configs_and_mapping_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    import providers
    from chatflow import Report, SourceEvent, Start
    from chatflow.domain.config import Settings
    from chatflow.runtime.config import load_config
    from chatflow.runtime.sources import load_sources

    (tmp_path / "stripe_mapping.py").write_text(snippet("source-mapping"))
    (tmp_path / "chatflow.toml").write_text(
        '[flows]\nmodules = ["conversations.payment_recovery"]\n\n'
        + snippet("source-config")
        + "\n"
        + snippet("sink-config")
    )
    sink_secret = "whsec_" + base64.b64encode(b"0" * 24).decode()
    settings = Settings.from_env({"STRIPE_WEBHOOK_SECRET": "whsec_test", "SHOP_SINK_SECRET": sink_secret})
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "stripe_mapping", raising=False)
    config = load_config(tmp_path / "chatflow.toml", settings)
    (source,) = load_sources(config)
    assert (source.binding.name, source.binding.kind, source.binding.from_) == ("stripe", "stripe", "+15005550006")
    order = {"phone": "+14155550123", "order_id": "A-1001"}
    event = {"data": {"object": {"metadata": order}}}
    (failed,) = source.mapping.actions(SourceEvent("evt_1", "payment_intent.payment_failed", event))
    assert isinstance(failed, Start) and (failed.flow, failed.to, failed.data) == (
        "payment_recovery",
        order["phone"],
        order,
    )
    (paid,) = source.mapping.actions(SourceEvent("evt_2", "payment_intent.succeeded", event))
    assert isinstance(paid, Report) and (paid.name, paid.key, paid.value) == ("payment_succeeded", "order_id", "A-1001")
    assert paid.otherwise is not None and paid.otherwise.flow == "payment_confirmed"
    sinks = providers.build_sinks(config, httpx.AsyncClient())
    assert list(sinks) == ["shop"] and sinks["shop"][1].kind == "webhook"


def test_the_whatsapp_template_step_and_the_http_flow_are_defined_as_written() -> None:
    from chatflow import Flow, Http, Say

    template: dict[str, object] = {}
    exec(snippet("whatsapp-template"), template)
    step = template["send_link"]
    assert isinstance(step, Say) and step.template is not None
    assert (step.template.name, step.template.language) == ("payment_failed", "en")
    assert [value for _, value in step.template.body] == ["{order_id}", "{payment_link}"]

    lookup: dict[str, object] = {}
    exec(snippet("http-secret-flow"), lookup)  # a URL whose host came from the data would raise here
    flow = lookup["Lookup"]
    assert isinstance(flow, type) and issubclass(flow, Flow)
    assert isinstance(flow.steps["look_up"], Http)


def test_the_pages_commands_against_chatflow_dev(tmp_path: Path) -> None:
    """The quick start's `chatflow dev` (with the WhatsApp Cloud page's number bound too), then,
    as written (on the test's ports): the console page's chat, the journeys page's curl, the
    dashboard page's takeover, reply and hand-back, and the WhatsApp Cloud page's verify call."""
    from chatflow.runtime.processes import free_port
    from tests.chatflow.runtime.devstack import DevStack, chatflow_env
    from tests.test_tutorial import stop_dev

    install, dev_command = snippet("quick-start-dev").splitlines()[-1].split(" && ")
    assert install == "python -m pip install -e ."  # .ci/run installs the same, with the dev extra
    assert dev_command == "chatflow dev"
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "chatflow.toml").write_text(
        (ROOT / "chatflow.toml").read_text(encoding="utf-8") + "\n" + snippet("whatsapp-cloud-config")
    )
    env = chatflow_env(
        WHATSAPP_ACCESS_TOKEN="token", WHATSAPP_APP_SECRET="secret", WHATSAPP_VERIFY_TOKEN="my-verify-token"
    )
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    port = free_port()
    ports = ["--temporal-port", str(free_port()), "--ui-port", str(free_port()), "--redis-port", str(free_port())]
    logs = tmp_path / "logs"
    logs.mkdir()
    process = subprocess.Popen(
        [*dev_command.split(), "--port", str(port), *ports],
        cwd=folder,
        env=env,
        stdout=(logs / "dev.out").open("wb"),
        stderr=(logs / "dev.err").open("wb"),
    )
    stack = DevStack(process, f"http://127.0.0.1:{port}", "", logs / "dev.out", logs / "dev.err")

    def shell(script: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", "-c", "set -eo pipefail\n" + script.replace("http://127.0.0.1:8000", stack.url)],
            cwd=folder,
            env={**env, **extra},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done

    try:
        stack.wait_ready()
        key = (folder / ".chatflow" / "api-key").read_text().strip()

        chatted = shell(snippet("console-chat-demo"), stdin="hi\n")
        assert "Hi! I'm the chatflow demo bot." in chatted.stdout

        started = json.loads(shell(snippet("journey-start")).stdout)
        assert (started["id"], started["status"]) == ("chat:console:+15005550006:+14155550123", "started")

        customer = "+14155550177"
        stack.say("hi", customer)
        stack.wait_for("What can I do for you?", customer)
        stack.say("3", customer)
        stack.wait_for("Connecting you with a person", customer)
        (conversation,) = [
            c["id"]
            for c in httpx.get(
                f"{stack.url}/api/conversations",
                params={"state": "running", "flow": "demo"},
                headers={"authorization": f"Bearer {key}"},
                timeout=10,
            ).json()["conversations"]
            if c["id"].endswith(customer)
        ]
        taken = shell(snippet("takeover-curl"), ID=conversation, CHATFLOW_API_KEY=key)
        assert taken.stdout.count("{") >= 3, taken.stdout
        said = stack.wait_for("You're back with the demo bot.", customer)
        assert "Hi, Ana here. How can I help?" in said

        verified = shell(snippet("whatsapp-verify-curl").replace("http://127.0.0.1:8765", stack.url))
        assert verified.stdout == "1158201444"
    finally:
        code = stop_dev(process)
    assert code == 0, stack.output()


def test_the_language_pages_commands_make_a_catalogue_and_check_it(tmp_path: Path) -> None:
    """docs/languages.md's i18n commands, as written, in a project with one flow: the template,
    the Spanish catalogue, its compiled form, and `chatflow check` naming what is untranslated."""
    from tests.chatflow.runtime.devstack import chatflow_env
    from tests.chatflow.runtime.test_cli import SHOP_FLOW

    (tmp_path / "shop_flows.py").write_text(SHOP_FLOW)
    (tmp_path / "chatflow.toml").write_text('[flows]\nmodules = ["shop_flows"]\n')
    env = chatflow_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", snippet("i18n-commands")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    catalogue = tmp_path / "locales" / "es" / "LC_MESSAGES" / "shop.po"
    assert (tmp_path / "locales" / "shop.pot").is_file(), done.stderr
    assert catalogue.is_file() and catalogue.with_suffix(".mo").is_file(), done.stderr
    assert done.returncode == 1  # the last command's: chatflow check found untranslated texts
    assert "es: shop.menu (Choice title) untranslated: 'Hats'" in done.stdout.splitlines()
