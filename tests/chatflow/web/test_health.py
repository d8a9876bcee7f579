from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from chatflow.domain.config import Config, Settings
from tests.helpers import running_app, started_services
from tests.ports import lasting_port

CONFIG = Config(numbers=[], flow_modules=[], settings=Settings())


async def test_ready_when_temporal_and_redis_answer(dev_env: WorkflowEnvironment, redis: Redis) -> None:
    async with started_services(CONFIG, [], client=dev_env.client, redis=redis) as services:
        async with running_app(services) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "temporal": "ok", "redis": "ok"}


async def test_not_ready_names_what_is_unreachable() -> None:
    nobody = lasting_port()
    temporal = await Client.connect(f"127.0.0.1:{nobody}", lazy=True)
    redis = Redis.from_url(f"redis://127.0.0.1:{nobody}", decode_responses=True)
    try:
        async with started_services(CONFIG, [], client=temporal, redis=redis) as services:
            async with running_app(services) as http:
                assert (await http.get("/healthz")).status_code == 200  # the process itself is fine
                ready = await http.get("/readyz")
    finally:
        await redis.aclose()
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["temporal"].startswith("unreachable") and body["redis"].startswith("unreachable")
