"""The embedded Valkey of `chatflow dev` has a memory limit and never evicts a key to stay in it."""

from pathlib import Path

from redis.asyncio import Redis

from chatflow.runtime.embedded import start_valkey
from chatflow.runtime.processes import free_port
from tests.faults.stack import HOST


async def test_chatflow_devs_valkey_is_bounded_and_refuses_writes_rather_than_evict(tmp_path: Path) -> None:
    valkey = await start_valkey(tmp_path, HOST, free_port(), maxmemory="2mb")
    client = Redis.from_url(valkey.url)
    try:
        limit = await client.config_get("maxmemory")
        policy = await client.config_get("maxmemory-policy")
        kept, refused = 0, ""
        for n in range(200):
            try:
                await client.set(f"chatflow:seen:{n}", "x" * 65_536)
                kept += 1
            except Exception as error:  # noqa: BLE001 - the refusal is what is looked for
                refused = str(error)
                break
        remaining = sum([1 async for _ in client.scan_iter("chatflow:seen:*")])
    finally:
        await client.aclose()
        valkey.process.stop()

    assert limit == {"maxmemory": str(2 * 1024 * 1024)}
    assert policy == {"maxmemory-policy": "noeviction"}
    assert "maxmemory" in refused and remaining == kept  # refused at the limit; nothing written was dropped
