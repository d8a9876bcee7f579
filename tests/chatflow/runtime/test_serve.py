"""`chatflow web` and `chatflow worker` as separate processes, as deployed: the console channel
(served by `chatflow web --console`, behind the API key) works across them through Redis, and
both stop cleanly on SIGTERM."""

import asyncio
import signal
import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from chatflow.runtime.processes import free_port
from tests.chatflow.runtime.devstack import DEMO_CONFIG, chatflow_command, chatflow_env


async def wait_until_ok(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            assert process.poll() is None, f"{process.args!r} exited with {process.returncode}"
            try:
                if (await http.get(url, timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


async def test_web_and_worker_processes_talk_through_temporal_and_redis(
    dev_env: WorkflowEnvironment, valkey_url: str, redis: Redis, tmp_path: Path
) -> None:
    # `redis`: an emptied database, no other test's buffer or forwarder leases in it.
    (tmp_path / "chatflow.toml").write_text(DEMO_CONFIG)
    env = chatflow_env(
        CHATFLOW_TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        CHATFLOW_REDIS_URL=valkey_url,
        CHATFLOW_LOG_JSON="1",
        CHATFLOW_API_KEY="web-key",
        CHATFLOW_CONSOLE="1",
    )
    web_port, metrics_port = free_port(), free_port()
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("web", "worker")}
    web = subprocess.Popen(
        chatflow_command("web", "--host", "127.0.0.1", "--port", str(web_port)),
        cwd=tmp_path,
        env=env,
        stdout=logs["web"],
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        chatflow_command("worker", "--metrics-port", str(metrics_port)),
        cwd=tmp_path,
        env=env,
        stdout=logs["worker"],
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{web_port}"
    customer = "+14155550142"
    try:
        await wait_until_ok(f"{url}/readyz", web)
        await wait_until_ok(f"http://127.0.0.1:{metrics_port}/metrics", worker)
        async with httpx.AsyncClient(base_url=url, timeout=40, headers={"authorization": "Bearer web-key"}) as http:
            message = {"from": customer, "to": "+15005550006", "text": "hi"}
            keyless = await http.post("/console/messages", json=message, headers={"authorization": ""})
            assert keyless.status_code == 401, keyless.text
            sent = await http.post("/console/messages", json=message)
            assert sent.status_code == 202
            texts: list[str] = []
            cursor = "0"
            while not any("1. Opening hours" in t for t in texts):
                page = (
                    await http.get("/console/messages", params={"customer": customer, "after": cursor, "wait": 20})
                ).json()
                assert page["messages"], f"no reply; so far {texts}"
                texts += [m["text"] for m in page["messages"]]
                cursor = page["next"]
            assert texts[0] == "Hi! I'm the chatflow demo bot."
            # The web process knows the config's flows: the journeys API starts them.
            journey = await http.post(
                "/api/conversations",
                headers={"authorization": "Bearer web-key"},
                json={"flow": "demo", "to": "+14155550143", "from": "+15005550006"},
            )
            assert journey.status_code == 202, journey.text
            metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        sends = {
            tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(metrics)
            if f.name == "chatflow_sends"
            for s in f.samples
            if s.name == "chatflow_sends_total"
        }
        assert sends[(("provider", "console"), ("status", "delivered"))] >= 2
    finally:
        for process in (web, worker):
            process.send_signal(signal.SIGTERM)
        codes = [await asyncio.to_thread(p.wait, 60) for p in (web, worker)]
        for log in logs.values():
            log.close()
    assert codes == [0, 0], [(tmp_path / f"{n}.log").read_text() for n in ("web", "worker")]
    assert customer not in (tmp_path / "web.log").read_text()


def test_processes_run_on_uvloop_and_get_their_result() -> None:
    import uvloop

    from chatflow.runtime.serve import run

    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run(main()).startswith(uvloop.__name__)
