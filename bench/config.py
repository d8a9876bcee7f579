"""The chatflow config every process of the bench shares: one Twilio number bound to the demo flow."""

from __future__ import annotations

from chatflow.domain.config import Config, Settings, parse_config

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"
NUMBER = "+15005550006"
FLOW = "demo"
TASK_QUEUE = "chatflow"

TOML = f"""
[flows]
modules = ["conversations.demo"]

[[numbers]]
number = "{NUMBER}"
provider = "twilio"
channel = "sms"
flow = "{FLOW}"
"""


def bench_config(twilio_api_url: str, public_url: str = "") -> Config:
    settings = Settings(
        public_url=public_url.rstrip("/"),
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_url=twilio_api_url.rstrip("/"),
    )
    return parse_config(TOML, settings, source="bench")
