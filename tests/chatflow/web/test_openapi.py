"""The OpenAPI document says what the server accepts and how it answers.

schemathesis reads /openapi.json from a running `chatflow web` (its own Temporal dev server and
Valkey, so the conversations it starts touch no other test) and sends a few hundred generated
requests across every documented operation, valid and not: none may get a 5xx, and every answer
must have a status code, a content type and a body the document declares.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.schemas import BaseSchema

from chatflow.runtime.embedded import start_valkey
from chatflow.runtime.processes import free_port
from chatflow.testing import dev_server
from chatflow.web.openapi import OPENAPI
from tests.chatflow.runtime.devstack import DEMO_CONFIG
from tests.faults.stack import HOST, spawn, web_ready

API_KEY = "schema-fuzz-key"
EXAMPLES = 15  # per operation and mode: a few hundred requests in all
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
async def web_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    folder = Path(tmp_path_factory.mktemp("openapi"))
    (folder / "chatflow.toml").write_text(DEMO_CONFIG)
    async with dev_server() as env:
        valkey = await start_valkey(folder, HOST, free_port())
        port = free_port()
        web = spawn(
            "web",
            ["web", "--host", HOST, "--port", str(port), "--config", str(folder / "chatflow.toml")],
            {
                "CHATFLOW_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                "CHATFLOW_REDIS_URL": valkey.url,
                "CHATFLOW_API_KEY": API_KEY,
                # Each case comes from an address of its own (see `client`): the wrong keys of the
                # negative cases are not counted against the others.
                "CHATFLOW_TRUSTED_PROXIES": HOST,
            },
            folder / "web.log",
        )
        try:
            await web_ready(web, f"http://{HOST}:{port}")
            yield f"http://{HOST}:{port}"
        finally:
            web.stop()
            valkey.process.stop()


def client() -> dict[str, str]:
    """A client address of its own, as a trusted proxy reports it."""
    return {"X-Forwarded-For": str(ipaddress.IPv4Address(random.randrange(1 << 24, 1 << 31)))}


OPERATIONS = [(path, method) for path, item in OPENAPI["paths"].items() for method in item]


@pytest.fixture(scope="module")
def api_schema(web_url: str) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{web_url}/openapi.json")


# schemathesis's own pytest parametrisation does not run on pytest 9 (it reads a removed private
# attribute), so each operation is a test of its own, driven by the operation's strategy.
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_every_operation_answers_as_documented(
    api_schema: BaseSchema, path: str, method: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def answers_as_documented(case: Case[Any]) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}", **client()}, checks=CHECKS)

    answers_as_documented()


@pytest.mark.parametrize("path", ["/api/conversations", "/api/dead-letters"])
@pytest.mark.parametrize("limit", ["²", "٣", "0", "1001", "-1", "ten"])
async def test_a_limit_that_is_not_1_to_1000_in_ascii_digits_is_refused(web_url: str, path: str, limit: str) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{web_url}{path}", params={"limit": limit}, headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert answer.status_code == 422 and "limit" in answer.json()["error"]
