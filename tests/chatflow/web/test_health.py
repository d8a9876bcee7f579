import httpx
from redis.asyncio import Redis
from temporalio.client import Client

from chatflow.web.app import create_app
from chatflow.domain.config import Config, Settings
from chatflow.runtime.processes import free_port

CONFIG = Config(numbers=[], flow_modules=[], settings=Settings())


def client_for(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_ready_when_temporal_and_redis_answer(dev_env, valkey_url) -> None:
    redis = Redis.from_url(valkey_url)
    async with client_for(create_app(CONFIG, dev_env.client, redis=redis)) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
    await redis.aclose()
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "temporal": "ok", "redis": "ok"}


async def test_not_ready_names_what_is_unreachable() -> None:
    nobody = free_port()
    temporal = await Client.connect(f"127.0.0.1:{nobody}", lazy=True)
    redis = Redis.from_url(f"redis://127.0.0.1:{nobody}")
    async with client_for(create_app(CONFIG, temporal, redis=redis)) as http:
        assert (await http.get("/healthz")).status_code == 200  # the process itself is fine
        ready = await http.get("/readyz")
    await redis.aclose()
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["temporal"].startswith("unreachable") and body["redis"].startswith("unreachable")
