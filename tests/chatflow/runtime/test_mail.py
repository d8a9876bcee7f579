"""`chatflow dev` catches mail: an SMTP server of its own when CHATFLOW_SMTP_URL is unset, whose
mail the landing page and `chatflow chat` show (to, subject, text)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from starlette.applications import Starlette

import providers
from chatflow.domain.channel import Resources
from chatflow.domain.config import Config, Settings
from chatflow.domain.messages import OutboundMessage
from chatflow.runtime.mail import DEV_FROM, catch_mail
from chatflow.web.landing import landing_routes
from providers.email.channel import EmailChannel
from providers.email.settings import EmailSettings
from tests.chatflow.runtime.devstack import DEMO_CONFIG, chatflow_command, chatflow_env, start_dev
from tests.chatflow.runtime.test_chat import _read_until
from tests.helpers import web_client


async def test_the_catcher_points_the_email_channel_at_itself_and_leaves_no_setting_behind() -> None:
    env: dict[str, str] = {"CHATFLOW_EMAIL_FROM": "Shop <support@shop.example>"}
    catcher = await catch_mail("127.0.0.1", env=env)
    assert catcher is not None
    try:
        assert env["CHATFLOW_SMTP_URL"] == catcher.url and env["CHATFLOW_EMAIL_SECRET"]
        channel = EmailChannel(Config([], [], Settings()), EmailSettings.from_env(env))
        await channel.send(OutboundMessage("email", "email", "", "ana@example.com", "Order A-1 shipped."))
        [email] = await catcher.wait_for("ana@example.com")
        assert email.header("From") == "Shop <support@shop.example>"  # the developer's own sender is kept
    finally:
        await catcher.stop()
    assert env == {"CHATFLOW_EMAIL_FROM": "Shop <support@shop.example>"}
    assert await catch_mail("127.0.0.1", env={"CHATFLOW_SMTP_URL": "smtp://mail.example.com"}) is None


async def test_the_catcher_goes_into_the_configs_settings_so_the_email_channel_is_built() -> None:
    settings = Settings(environment={})
    config = Config([], [], settings)
    async with httpx.AsyncClient() as http:
        assert "email" not in providers.build_channels(config, Resources(http=http))
        catcher = await catch_mail("127.0.0.1", settings, env={})
        assert catcher is not None
        try:
            channel = providers.build_channels(config, Resources(http=http))["email"]
            await channel.send(OutboundMessage("email", "email", "", "ana@example.com", "Hello"))
            [email] = await catcher.wait_for("ana@example.com")
            assert email.header("From") == DEV_FROM
        finally:
            await catcher.stop()


async def test_the_landing_page_and_dev_mail_show_what_was_caught() -> None:
    env: dict[str, str] = {}
    catcher = await catch_mail("127.0.0.1", env=env)
    assert catcher is not None
    try:
        app = Starlette(routes=landing_routes(Config([], [], Settings()), mailbox=catcher))
        async with web_client(app) as web:
            assert "None yet" in (await web.get("/")).text
            channel = EmailChannel(Config([], [], Settings()), EmailSettings.from_env(env))
            await channel.send(
                OutboundMessage("email", "email", "", "ana@example.com", "Order <A-1> shipped.\n\nSoon.")
            )
            await catcher.wait_for("ana@example.com")
            page = (await web.get("/")).text
            assert "<dt>To ana@example.com: Order &lt;A-1&gt; shipped.</dt>" in page
            assert "<pre>Order &lt;A-1&gt; shipped.\n\nSoon.</pre>" in page
            caught = (await web.get("/dev/mail")).json()
            assert caught == {
                "emails": [
                    {
                        "to": ["ana@example.com"],
                        "subject": "Order <A-1> shipped.",
                        "text": "Order <A-1> shipped.\n\nSoon.",
                    }
                ],
                "next": 1,
            }
            assert (await web.get("/dev/mail", params={"after": 1})).json() == {"emails": [], "next": 1}
            assert (await web.get("/dev/mail", params={"after": "x"})).status_code == 400
        assert DEV_FROM.endswith("<dev@chatflow.localhost>")
    finally:
        await catcher.stop()


async def test_an_app_without_a_catcher_has_no_mail_route() -> None:
    app = Starlette(routes=landing_routes(Config([], [], Settings())))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as web:
        assert (await web.get("/dev/mail")).status_code == 404
        assert "Mail caught" not in (await web.get("/")).text


NOTIFIER = """\
from chatflow import Ask, End, Flow, Notify, anything


class OrderNote(Flow):
    note = Notify("Order {order} is on its way.", to="{email}", channel="email", subject="Order {order} shipped")
    ask = Ask("We emailed you the details. Anything else?", branches={anything: "done"})
    done = End("completed", "Bye.")
"""


def test_chatflow_dev_catches_a_flows_email_and_chat_shows_it(tmp_path: Path) -> None:
    (tmp_path / "notifier.py").write_text(NOTIFIER)
    data = tmp_path / "data"
    config = DEMO_CONFIG.replace('modules = ["conversations.demo"]', 'modules = ["conversations.demo", "notifier"]')
    # An email sender bound in chatflow.toml needs no CHATFLOW_SMTP_URL under dev: the catcher is it.
    config += '\n[[numbers]]\naddress = "mailto:orders@shop.example"\nprovider = "email"\nflow = "order_note"\n'
    stack = start_dev(data, tmp_path / "logs", config_text=config)
    try:
        assert "  Mail          smtp://127.0.0.1:" in stack.output()
        chat = subprocess.Popen(
            chatflow_command(
                "chat", "order_note", "--start", "--data", '{"order": "A-7", "email": "ana@example.com"}',
                "--as", "+14155550123", "--data-dir", str(data),
            ),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=chatflow_env(),
        )  # fmt: skip
        lines: list[str] = []
        _read_until(chat, "email> to ana@example.com: Order A-7 shipped", lines)
        _read_until(chat, "       Order A-7 is on its way.", lines)
        chat.communicate("", timeout=60)
        page = httpx.get(stack.url + "/").text
        assert "<dt>To ana@example.com: Order A-7 shipped</dt>" in page
    finally:
        stack.stop()
