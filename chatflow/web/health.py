"""`/healthz` (the process answers) and `/readyz` (it can do its job: Temporal and Redis reachable).

A load balancer sends traffic only to ready instances, and an orchestrator restarts unhealthy
ones; keeping the two apart stops a Temporal outage from restarting every web replica.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client

CHECK_TIMEOUT = 3.0


async def temporal_problem(client: Client) -> str:
    """ "" when Temporal answers its health check, else what went wrong."""
    try:
        healthy = await asyncio.wait_for(
            client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT)),
            CHECK_TIMEOUT + 1,
        )
    except Exception as error:  # noqa: BLE001 - any failure means "not ready", with its reason
        return f"unreachable: {error or type(error).__name__}"
    return "" if healthy else "not serving"


async def redis_problem(redis: Redis) -> str:
    try:
        await asyncio.wait_for(redis.ping(), CHECK_TIMEOUT)
    except Exception as error:  # noqa: BLE001
        return f"unreachable: {error or type(error).__name__}"
    return ""


def health_routes(client: Client, redis: Redis | None) -> list[Route]:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks = {"temporal": temporal_problem(client)}
        if redis is not None:
            checks["redis"] = redis_problem(redis)
        problems = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
        body = {name: problem or "ok" for name, problem in problems.items()}
        ready = not all(problems.values())  # webhooks are taken while either answers (buffer, or straight to Temporal)
        return JSONResponse({"status": "ready" if ready else "unavailable", **body}, status_code=200 if ready else 503)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
