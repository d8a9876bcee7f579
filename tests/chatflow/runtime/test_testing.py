"""The test harness itself: time skipping survives a broken connection to the test server;
recorded histories get a file each."""

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from chatflow import Ask, End, Flow, Say, anything
from chatflow.domain.addresses import Address
from chatflow.edge import keys
from chatflow.runtime.testing import FlowTest, record_histories, skip_time
from tests.flows import SurveyV1, SurveyV2

_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA_FRAME = 0x0
_END_STREAM_FLAG = 0x1


class CuttableProxy:
    """A loopback TCP proxy in front of the test server that can break the client's connections.

    It reads the client's HTTP/2 frames to count whole requests (a DATA frame ending a stream), so
    a test can cut exactly while a given call is in flight instead of guessing with a delay. Only
    the client's side is cut: the server keeps the request and goes on with it, as when an answer
    is lost on the way back.
    """

    def __init__(self, upstream: str) -> None:
        self.host, port = upstream.rsplit(":", 1)
        self.upstream_port = int(port)
        self.requests = 0
        self._request_seen = asyncio.Condition()
        self._clients: list[asyncio.StreamWriter] = []
        self._upstreams: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> "CuttableProxy":
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for upstream in self._upstreams:
            upstream.transport.abort()

    @property
    def target(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def wait_for_requests(self, count: int) -> None:
        async with self._request_seen:
            await asyncio.wait_for(self._request_seen.wait_for(lambda: self.requests >= count), 30)

    def cut(self) -> None:
        for client in self._clients:
            client.transport.abort()
        self._clients.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        self._clients.append(writer)
        self._upstreams.append(up_writer)
        await asyncio.gather(
            self._client_to_server(reader, up_writer),
            self._pipe(up_reader, writer),
            return_exceptions=True,
        )

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(len(_HTTP2_PREFACE)))
        while True:
            header = await reader.readexactly(9)
            length = int.from_bytes(header[:3], "big")
            payload = await reader.readexactly(length)
            writer.write(header + payload)
            await writer.drain()
            if header[3] == _DATA_FRAME and header[4] & _END_STREAM_FLAG:
                async with self._request_seen:
                    self.requests += 1
                    self._request_seen.notify_all()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


released = asyncio.Event()


@activity.defn
async def hold_the_clock() -> None:
    # While an activity runs the test server does not move its clock: the skip stays in flight.
    await released.wait()


@workflow.defn(sandboxed=False)
class HoldsTheClock:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(hold_the_clock, start_to_close_timeout=timedelta(minutes=5))


async def test_a_skip_survives_its_connection_breaking_mid_call(skipping_env: WorkflowEnvironment) -> None:
    released.clear()
    async with (
        CuttableProxy(skipping_env.client.service_client.config.target_host) as proxy,
        Worker(
            skipping_env.client, task_queue="holds-the-clock", workflows=[HoldsTheClock], activities=[hold_the_clock]
        ),
    ):
        proxied = await Client.connect(proxy.target)
        handle = await skipping_env.client.start_workflow(
            HoldsTheClock.run, id="holds-the-clock", task_queue="holds-the-clock"
        )
        before = await skipping_env.get_current_time()
        warm = proxy.requests
        skip = asyncio.create_task(skip_time(proxied, timedelta(hours=3)))
        await proxy.wait_for_requests(warm + 2)  # read the clock, then the sleep: now in flight
        proxy.cut()
        released.set()
        await asyncio.wait_for(skip, 60)
        await handle.result()
        assert await skipping_env.get_current_time() >= before + timedelta(hours=3)


async def test_journeys_recorded_within_a_minute_get_a_file_each(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """A journey's run has a time-based id, whose first characters are alike for a minute."""

    class Hello(Flow):
        name = f"hello_{uuid.uuid4().hex[:8]}"  # only this test's conversations
        ask = Ask("Hello {name}!", branches={anything: "bye"})
        bye = End("completed", "Bye.")

    for name in ("Ada", "Bob"):
        async with FlowTest(dev_env, Hello) as chat:
            assert await chat.start({"name": name}) == [f"Hello {name}!"]
            assert await chat.send("hi") == ["Bye."]
            await chat.result()
    recorded = []
    for _ in range(100):  # visibility lists a run a moment after it starts
        recorded = await record_histories(dev_env.client, Hello.name, tmp_path)
        if len(recorded) == 2:
            break
        await asyncio.sleep(0.1)
    assert [entry.new for entry in recorded] == [True, True]
    assert len(list(tmp_path.glob("*.json"))) == 2
    # Named <flow>-v<version>-<run>-<events>.json, as the docs say: the version read off the run's pin.
    assert all(entry.path.name.startswith(f"{Hello.name}-v1-") for entry in recorded), recorded


class Checkin(Flow):
    """Asks, thanks for the answer; a send that cannot be made ends it as failed."""

    on_failure = "undeliverable"
    ask = Ask("Rate us 1-5", branches={anything: "thanks"})
    thanks = Say("Thanks!")
    done = End("completed")
    undeliverable = End("failed")


async def test_a_flowtest_sends_through_the_workers_send_guard(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Checkin) as chat:
        assert await chat.start() == ["Rate us 1-5"]
        assert await chat.send("5") == ["Thanks!"]
        assert (await chat.result()).outcome == "completed"
        # Paced by the rate limiter chatflow worker uses, on the sender's own key.
        assert chat.redis is not None
        assert await chat.redis.exists(keys.rate(str(Address("tel", chat.ref.number))))


async def test_after_the_customer_opts_out_the_next_send_takes_the_failure_branch(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with FlowTest(skipping_env, Checkin) as chat:
        assert await chat.start() == ["Rate us 1-5"]
        await chat.opt_out()
        assert await chat.send("5") == []  # "Thanks!" is not sent to a customer who said STOP
        result = await chat.result()
    assert result.outcome == "failed"
    assert chat.said == ["Rate us 1-5"]


async def test_a_customer_who_opts_back_in_is_sent_to_again(skipping_env: WorkflowEnvironment) -> None:
    async with FlowTest(skipping_env, Checkin) as chat:
        await chat.start()
        await chat.opt_out()
        await chat.opt_in()
        assert await chat.send("5") == ["Thanks!"]


async def test_a_test_of_a_flows_first_version_runs_it_after_a_test_of_its_second(
    skipping_env: WorkflowEnvironment,
) -> None:
    # Workers of one process share the registry the workflow reads; each worker's conversations
    # see its own flows only, so what one test deployed never answers in the next.
    async with FlowTest(skipping_env, SurveyV2) as newer:
        assert await newer.start() == ["May we ask one question? YES/NO"]
    async with FlowTest(skipping_env, SurveyV1) as older:
        assert await older.start() == ["Rate us 1-5"]
        assert (await older.settle()).version == 1
