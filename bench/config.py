"""The chatflow config every process of the bench shares: one Twilio number bound to the demo flow."""

from __future__ import annotations

import os

from chatflow.domain.config import Config, Settings
from chatflow.runtime.config import parse_config

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"
NUMBER = "+15005550006"
FLOW = "demo"
TASK_QUEUE = "chatflow"
# Messages per second the number may send. A real long code gets 1 (the carriers' limit); the
# fake provider has none, so the limiter is kept (its Redis round trip is part of every send) but
# set far above anything the bench reaches.
RATE = 1_000_000

# chatflow.toml's text: parsed in code for the bench's processes, written as a file for `chatflow dev`.
TOML = f"""
[flows]
modules = ["conversations.demo"]

[[numbers]]
number = "{NUMBER}"
provider = "twilio"
channel = "sms"
flow = "{FLOW}"
rate = {RATE}
"""


def bench_config(
    twilio_api_url: str, *, public_url: str = "", temporal_address: str = "", redis_url: str = ""
) -> Config:
    settings = Settings(
        # CHATFLOW_FORWARDER as chatflow reads it (web, else worker): which bench process forwards.
        forwarder=Settings.from_env({"CHATFLOW_FORWARDER": os.environ.get("CHATFLOW_FORWARDER", "")}).forwarder,
        temporal_address=temporal_address,
        redis_url=redis_url,
        public_url=public_url.rstrip("/"),
        environment={
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "CHATFLOW_TWILIO_API_URL": twilio_api_url.rstrip("/"),
        },
    )
    return parse_config(TOML, settings, source="bench")
