"""The security review's reproductions (issue 18), attacked from outside as the review did: each
test failed on the code the review ran and passes now.

The web app is served as `chatflow web` serves it (Services, the Redis edge, a real Temporal);
webhooks are signed exactly as the provider signs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.addresses import Address
from chatflow.domain.config import Config, NumberBinding, Settings
from chatflow.domain.messages import OutboundMessage
from chatflow.edge.buffer import PARTITIONS
from chatflow.runtime.processes import bind, free_port
from chatflow.runtime.services import Services
from chatflow.web.access import FAILURES
from chatflow.web.body import MAX_DEPTH
from chatflow.web.dashboard.session import COOKIE
from conversations.demo import Demo
from providers.console.outbox import MAX_CUSTOMERS
from tests.chatflow.runtime.devstack import DEMO_CONFIG, chatflow_command, chatflow_env
from tests.flows import FLOWS
from tests.helpers import new_customer, running_app, started_services
from tests.providers.conftest import (
    ACCOUNT_SID,
    CONSOLE_NUMBER,
    PUBLIC_URL,
    TWILIO_NUMBER,
    TWILIO_TOKEN,
    make_config,
    twilio_inbound,
    twilio_post,
)

KEY = "the-api-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
NUMBER = "+15005550006"
MANY = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
SOME_CONVERSATION = f"/dashboard/api/conversations/chat:sms:{NUMBER}:+12025550000"
LOOPBACK = "http://127.0.0.1:8000"  # as `chatflow dev` serves the dashboard: cookies without Secure


def config(api_key: str = KEY) -> Config:
    return Config(
        numbers=[
            NumberBinding(address=Address("tel", NUMBER), provider="console", channel="sms", flow="parrot", rate=50.0)
        ],
        flow_modules=[],
        settings=Settings(api_key=api_key),
    )


@pytest.fixture
async def services(dev_env: WorkflowEnvironment, redis: Redis) -> AsyncIterator[Services]:
    async with started_services(config(), FLOWS, client=dev_env.client, redis=redis) as services:
        yield services


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(services) as http:
        yield http


@contextlib.asynccontextmanager
async def client_of(
    app: Starlette, base_url: str = "http://test", address: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` whose requests come from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        yield http


async def start_journey(http: httpx.AsyncClient) -> str:
    answer = await http.post(
        "/api/conversations", json={"flow": "payment", "to": new_customer(), "from": NUMBER}, headers=AUTH
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


# -- 1. fail closed -------------------------------------------------------------------------------


def chatflow_web(folder: Path, config: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`chatflow web` with `config`, against servers that are not there (it must not get so far)."""
    (folder / "chatflow.toml").write_text(config)
    unreachable = {"CHATFLOW_REDIS_URL": "redis://127.0.0.1:1/0", "CHATFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    return subprocess.run(
        chatflow_command("web", "--port", "0"),
        capture_output=True,
        text=True,
        cwd=folder,
        env=chatflow_env(**unreachable, **env),
        timeout=60,
    )


def test_chatflow_web_without_an_api_key_refuses_to_start(tmp_path: Path) -> None:
    done = chatflow_web(tmp_path, DEMO_CONFIG)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: CHATFLOW_API_KEY is not set"), done.stderr
    assert done.stdout == ""


async def test_an_app_built_without_a_key_serves_no_conversation(
    services: Services, dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    async with client_of(services.web_app()) as keyed:
        conversation = await start_journey(keyed)
    async with started_services(config(api_key=""), FLOWS, client=dev_env.client, redis=redis) as keyless:
        async with client_of(keyless.web_app()) as http:
            for path in ("/api/conversations", f"/api/conversations/{conversation}", "/api/dead-letters"):
                for headers in ({}, {"Authorization": "Bearer "}, AUTH):
                    answer = await http.get(path, headers=headers)
                    assert answer.status_code == 401, (path, answer.text)
                    assert "CHATFLOW_API_KEY is not set" in answer.json()["error"]
            for path in ("/dashboard", f"/dashboard/conversations/{conversation}", "/dashboard/api/conversations"):
                answer = await http.get(path)
                assert answer.status_code == 503 and conversation not in answer.text, (path, answer.text)
            taking = await http.post(f"/dashboard/conversations/{conversation}/takeover", data={"operator": "Mallory"})
            assert taking.status_code == 503


# -- 5. sessions and throttling -------------------------------------------------------------------


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found[1]


async def test_a_signed_out_cookie_is_refused(services: Services) -> None:
    app = services.web_app()
    async with client_of(app, LOOPBACK) as operator, client_of(app, LOOPBACK) as thief:
        assert (await operator.post("/dashboard/login", data={"key": KEY, "next": "/dashboard"})).status_code == 303
        cookie = operator.cookies[COOKIE]
        thief.cookies.set(COOKIE, cookie, path="/dashboard")  # a copy, taken while it was good
        assert (await thief.get(SOME_CONVERSATION)).status_code == 404  # signed in: asked for, not there
        token = csrf_in((await operator.get("/dashboard")).text)
        assert (await operator.post("/dashboard/logout", data={"csrf": token})).status_code == 303

        assert (await thief.get(SOME_CONVERSATION)).status_code == 401
        assert (await thief.get("/dashboard")).headers["location"].startswith("/dashboard/login")
        assert (await thief.post("/dashboard/logout", data={"csrf": token})).status_code == 403


async def test_thirty_wrong_keys_get_429_with_retry_after(services: Services) -> None:
    app = services.web_app()
    async with client_of(app, address="203.0.113.7") as guesser, client_of(app, address="198.51.100.2") as other:
        codes = []
        for guess in range(30):
            answer = await guesser.get("/api/conversations", headers={"Authorization": f"Bearer guess-{guess}"})
            codes.append(answer.status_code)
        assert codes == [401] * FAILURES + [429] * (30 - FAILURES)
        assert 0 < int(answer.headers["retry-after"]) <= 60
        assert "try again in" in answer.json()["error"]
        # The right key gains nothing from guessing faster; another client is not held back.
        assert (await guesser.get("/api/conversations", headers=AUTH)).status_code == 429
        assert (await guesser.get("/api/dead-letters", headers=AUTH)).status_code == 429
        assert (await other.get("/api/dead-letters", headers=AUTH)).status_code == 200


async def test_thirty_wrong_sign_ins_get_429_with_retry_after(services: Services) -> None:
    app = services.web_app()
    async with client_of(app, address="203.0.113.8") as guesser:
        codes = []
        for guess in range(30):
            answer = await guesser.post("/dashboard/login", data={"key": f"guess-{guess}", "next": "/dashboard"})
            codes.append(answer.status_code)
        assert codes == [401] * FAILURES + [429] * (30 - FAILURES)
        assert 0 < int(answer.headers["retry-after"]) <= 60
        right = await guesser.post("/dashboard/login", data={"key": KEY, "next": "/dashboard"})
        assert right.status_code == 429 and COOKIE not in guesser.cookies


@pytest.mark.parametrize(
    "base_url, secure",
    [
        ("http://127.0.0.1:8000", False),  # chatflow dev: a browser would never send a Secure cookie back
        ("http://[::1]:8000", False),
        ("http://chat.example.com", True),
        ("https://chat.example.com", True),
        ("https://127.0.0.1:8443", True),
    ],
)
async def test_the_session_cookie_is_secure_unless_served_on_loopback_over_http(
    services: Services, base_url: str, secure: bool
) -> None:
    async with client_of(services.web_app(), base_url=base_url) as http:
        answer = await http.post("/dashboard/login", data={"key": KEY, "next": "/dashboard"})
    assert answer.status_code == 303
    flags = {part.strip().lower() for part in answer.headers["set-cookie"].split(";")}
    assert ("secure" in flags) is secure
    assert {"httponly", "samesite=strict", "path=/dashboard"} <= flags


# -- 8. deep JSON ---------------------------------------------------------------------------------


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [MAX_DEPTH, 500, 950])
async def test_deeply_nested_json_in_journey_data_is_refused_with_a_reason(api: httpx.AsyncClient, levels: int) -> None:
    customer = new_customer()
    # The data object is one level, the body another: `levels` arrays inside make it deeper than allowed.
    body = f'{{"flow": "payment", "to": "{customer}", "from": "{NUMBER}", "data": {{"x": {nested(levels)}}}}}'
    answer = await api.post("/api/conversations", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == f"the body nests JSON deeper than {MAX_DEPTH} levels"
    assert (await api.get("/api/dead-letters", headers=AUTH)).status_code == 200  # and the API goes on


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/conversations/chat:sms:+15005550006:+14155550100/events", '{{"name": "x", "data": {deep}}}'),
        ("/api/broadcasts", '{{"flow": "payment", "from": "+15005550006", "to": ["+14155550100"], "data": {deep}}}'),
        ("/api/digests", '{{"flow": "payment", "from": "+15005550006", "to": "+14155550100", "event": {deep}}}'),
        ("/api/conversations/chat:sms:+15005550006:+14155550100/replies", '{{"operator": {deep}, "text": "x"}}'),
    ],
)
async def test_every_json_route_refuses_deep_json(api: httpx.AsyncClient, path: str, body: str) -> None:
    answer = await api.post(
        path, content=body.format(deep=nested(950)), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert "deeper than" in answer.json()["error"]


async def test_json_as_deep_as_allowed_is_taken(api: httpx.AsyncClient) -> None:
    customer = new_customer()
    data = '{"x": ' + nested(MAX_DEPTH - 2) + "}"  # body, data, then arrays: MAX_DEPTH levels in all
    body = f'{{"flow": "payment", "to": "{customer}", "from": "{NUMBER}", "data": {data}}}'
    answer = await api.post("/api/conversations", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text


# -- 2. the console channel -----------------------------------------------------------------------


async def test_the_console_is_not_served_unless_asked_and_then_behind_the_key(services: Services) -> None:
    customer = new_customer()
    message = {"from": customer, "to": NUMBER, "text": "hi"}
    conversation = f"chat:sms:{NUMBER}:{customer}"
    async with client_of(services.web_app(console="off")) as off:
        assert (await off.post("/console/messages", json=message, headers=AUTH)).status_code == 404
        assert (await off.get("/console/messages", params={"customer": customer}, headers=AUTH)).status_code == 404
        assert (await off.get("/console/numbers", headers=AUTH)).status_code == 404
        assert (await off.get(f"/console/conversations/{conversation}", headers=AUTH)).status_code == 404
    async with client_of(services.web_app(console="key")) as keyed:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            assert (await keyed.post("/console/messages", json=message, headers=headers)).status_code == 401
            assert (await keyed.get("/console/numbers", headers=headers)).status_code == 401
            assert (await keyed.get(f"/console/conversations/{conversation}", headers=headers)).status_code == 401
        assert (await keyed.get("/console/numbers", headers=AUTH)).status_code == 200
        assert (await keyed.post("/console/messages", json=message, headers=AUTH)).status_code == 202


async def test_made_up_numbers_cannot_fill_redis_through_the_console(services: Services, redis: Redis) -> None:
    async with client_of(services.web_app()) as http:  # served to all, as `chatflow dev` serves it
        customers = [f"+1202555{n:04d}" for n in range(200)]
        answers = [
            await http.post("/console/messages", json={"from": customer, "to": NUMBER, "text": "hi"})
            for customer in customers
        ]
        assert [a.status_code for a in answers] == [202] * MAX_CUSTOMERS + [429] * (200 - MAX_CUSTOMERS)
        assert 0 < int(answers[-1].headers["retry-after"]) <= 24 * 3600
        assert "customers a day" in answers[-1].json()["error"]
        again = await http.post("/console/messages", json={"from": customers[0], "to": NUMBER, "text": "again"})
        assert again.status_code == 202  # one who wrote before still may
    keys = await redis.keys("chatflow:console*")
    ttls = [await redis.ttl(key) for key in keys]
    assert keys and all(ttl > 0 for ttl in ttls), dict(zip(keys, ttls, strict=True))


async def test_chatflow_web_serves_no_console_by_default(
    dev_env: WorkflowEnvironment, valkey_url: str, tmp_path: Path
) -> None:
    (tmp_path / "chatflow.toml").write_text(DEMO_CONFIG)
    port = free_port()
    env = chatflow_env(
        CHATFLOW_TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        CHATFLOW_REDIS_URL=valkey_url,
        CHATFLOW_API_KEY=KEY,
    )
    with (tmp_path / "web.log").open("wb") as log:
        web = subprocess.Popen(
            chatflow_command("web", "--host", "127.0.0.1", "--port", str(port)),
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                await until_up(http, web)
                message = {"from": "+14155550100", "to": "+15005550006", "text": "hi"}
                assert (await http.post("/console/messages", json=message, headers=AUTH)).status_code == 404
                assert (await http.get("/console/numbers")).status_code == 404
                assert (await http.get("/dashboard")).status_code == 303  # to sign in
                assert (await http.get("/api/conversations")).status_code == 401
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(60)
    banner = (tmp_path / "web.log").read_text()
    assert "console channel off" in banner and KEY not in banner


async def until_up(http: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        assert process.poll() is None, f"{process.args!r} exited with {process.returncode}"
        try:
            await http.get("/healthz")
            return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise AssertionError("the web app never answered")


async def test_waiting_console_readers_hold_no_redis_connection_and_starve_no_webhook(
    dev_env: WorkflowEnvironment, valkey_url: str, redis: Redis
) -> None:
    # A small pool: the forwarder's blocking reads (one per partition) and 8 more for 400 readers.
    pool = BlockingConnectionPool.from_url(valkey_url, decode_responses=True, max_connections=PARTITIONS + 8, timeout=2)
    small = Redis.from_pool(pool)
    try:
        async with started_services(make_config(), [Demo], client=dev_env.client, redis=small) as services:
            outbox = services.channels["console"].outbox  # type: ignore[attr-defined]
            async with served(services) as url, httpx.AsyncClient(base_url=url, timeout=60, limits=MANY) as http:
                customers = [new_customer() for _ in range(400)]
                polls = [
                    asyncio.create_task(http.get("/console/messages", params={"customer": c, "wait": 30}))
                    for c in customers
                ]
                while outbox.waiting() < len(polls):
                    assert not any(poll.done() for poll in polls), [p.result().text for p in polls if p.done()][:1]
                    await asyncio.sleep(0.05)
                # Nobody blocks in Redis for them: the forwarder's reads are the only ones.
                blocked = [c for c in await redis.client_list() if "b" in c["flags"]]
                assert len(blocked) <= PARTITIONS, blocked

                signed = twilio_post(f"{PUBLIC_URL}/webhooks/twilio", twilio_inbound("SM" + uuid.uuid4().hex, "hi"))
                webhook = await http.post("/webhooks/twilio", **signed)
                assert webhook.status_code == 200, webhook.text
                assert not any(poll.done() for poll in polls)  # answered while all 400 still wait

                # The one listener wakes the reader of the customer a message is for, and only it.
                await outbox.put(OutboundMessage("console", "console", CONSOLE_NUMBER, customers[7], "for you"))
                answer = await polls[7]
                assert [m["text"] for m in answer.json()["messages"]] == ["for you"]
                assert sum(poll.done() for poll in polls) == 1
                for poll in polls:
                    poll.cancel()
                await asyncio.gather(*polls, return_exceptions=True)
    finally:
        await small.aclose()


# -- 6. forwarded headers -------------------------------------------------------------------------


def test_chatflow_web_with_a_url_signing_channel_bound_needs_a_public_url(tmp_path: Path) -> None:
    done = chatflow_web(
        tmp_path, TWILIO_TOML, CHATFLOW_API_KEY=KEY, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: CHATFLOW_PUBLIC_URL is not set: twilio signs the URL it calls"), done.stderr


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    done = chatflow_web(tmp_path, DEMO_CONFIG, CHATFLOW_API_KEY=KEY, CHATFLOW_TRUSTED_PROXIES="10.0.0.0/8, proxy.local")
    assert done.returncode == 2
    assert done.stderr.startswith("error: CHATFLOW_TRUSTED_PROXIES: 'proxy.local' is not an address"), done.stderr


TWILIO_TOML = f"""
[flows]
modules = ["conversations.demo"]

[[numbers]]
number = "{TWILIO_NUMBER}"
provider = "twilio"
flow = "demo"
"""


@contextlib.asynccontextmanager
async def served(services: Services, *, trusted_proxies: Sequence[str] = ()) -> AsyncIterator[str]:
    """The app under uvicorn, as `chatflow web` serves it, on a port of its own: its URL."""
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop = asyncio.Event()
    serving = asyncio.create_task(services.serve_web(sock, stop, trusted_proxies=trusted_proxies))
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(500):
                if serving.done():
                    serving.result()
                try:
                    await http.get(f"{url}/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.01)
        yield url
    finally:
        stop.set()
        await serving


@pytest.mark.parametrize(
    "trusted, status",
    [
        ((), 403),  # the forged scheme is not believed: the URL is http://, not the https:// signed
        (("127.0.0.1",), 200),  # from a proxy the configuration names, it is
    ],
)
async def test_forwarded_proto_counts_only_from_trusted_proxies(
    dev_env: WorkflowEnvironment, redis: Redis, trusted: tuple[str, ...], status: int
) -> None:
    # Built directly, without CHATFLOW_PUBLIC_URL (which `chatflow web` would require): the
    # signature URL then comes from the request, and only a trusted proxy may change its scheme.
    async with started_services(make_config(public_url=""), [Demo], client=dev_env.client, redis=redis) as services:
        async with served(services, trusted_proxies=trusted) as url:
            signed_for = url.replace("http://", "https://") + "/webhooks/twilio"
            post = twilio_post(signed_for, twilio_inbound("SM" + uuid.uuid4().hex, "hi", From=new_customer()))
            post["headers"]["X-Forwarded-Proto"] = "https"
            async with httpx.AsyncClient() as http:
                answer = await http.post(f"{url}/webhooks/twilio", **post)
    assert answer.status_code == status, answer.text


async def test_a_webhook_signed_for_another_app_is_refused_whatever_the_forwarded_headers(
    dev_env: WorkflowEnvironment, redis: Redis
) -> None:
    other = "https://other-app.example.net/webhooks/twilio"  # another app on the same Twilio account
    async with started_services(make_config(), [Demo], client=dev_env.client, redis=redis) as services:
        async with served(services) as url:
            post = twilio_post(other, twilio_inbound("SM" + uuid.uuid4().hex, "hi", From=new_customer()))
            post["headers"].update(
                {
                    "Host": "other-app.example.net",
                    "X-Forwarded-Host": "other-app.example.net",
                    "X-Forwarded-Proto": "https",
                }
            )
            async with httpx.AsyncClient() as http:
                answer = await http.post(f"{url}/webhooks/twilio", **post)
                own = twilio_post(f"{PUBLIC_URL}/webhooks/twilio", twilio_inbound("SM" + uuid.uuid4().hex, "hi"))
                accepted = await http.post(f"{url}/webhooks/twilio", **own)
    assert answer.status_code == 403, answer.text
    assert accepted.status_code == 200, accepted.text
