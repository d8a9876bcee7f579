import pytest

from chatflow.domain.config import Settings
from chatflow.domain.errors import ConfigError
from chatflow.runtime.config import parse_config

TOML = """
[[numbers]]
number = "+15005550006"
provider = "console"
flow = "demo"
rate = 5
help_text = "Acme support: reply STOP to stop."
keywords = { JOIN = "signup" }

[[numbers]]
number = "+15005550007"
provider = "console"
channel = "whatsapp"
flow = "demo"
fallback_number = "+15005550006"
"""


def test_edge_settings_of_a_number_are_read() -> None:
    config = parse_config(TOML, Settings())
    sms, whatsapp = config.numbers
    assert (sms.rate, sms.help_text, sms.keywords) == (5.0, "Acme support: reply STOP to stop.", {"JOIN": "signup"})
    assert (whatsapp.rate, whatsapp.fallback_number) == (0.0, "+15005550006")


def test_callback_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"CHATFLOW_CALLBACK_URL": "https://b.example/s", "CHATFLOW_CALLBACK_SECRET": "k"})
    assert (settings.callback_url, settings.callback_secret) == ("https://b.example/s", "k")


def test_the_replicas_a_webhook_waits_for_come_from_the_environment() -> None:
    assert Settings.from_env({}).redis_replica_acks == 0
    assert Settings.from_env({"CHATFLOW_REDIS_REPLICA_ACKS": "1"}).redis_replica_acks == 1
    with pytest.raises(ConfigError, match=r"CHATFLOW_REDIS_REPLICA_ACKS='yes': expected a whole number"):
        Settings.from_env({"CHATFLOW_REDIS_REPLICA_ACKS": "yes"})


@pytest.mark.parametrize("line, says", [('rate = "fast"', "rate"), ('fallback_number = "12"', "fallback_number")])
def test_bad_edge_settings_are_config_errors(line: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_config(f'[[numbers]]\nnumber = "+15005550006"\nprovider = "console"\nflow = "demo"\n{line}\n', Settings())


def test_hosts_http_steps_may_call_inside_the_network_come_from_the_file_and_the_environment() -> None:
    config = parse_config(
        '[http]\nallow = ["127.0.0.1:8080", "shop.internal"]\n',
        Settings.from_env({"CHATFLOW_HTTP_ALLOW": "10.0.0.5:443, [::1]"}),
    )
    assert config.settings.http_allow == ("10.0.0.5:443", "[::1]", "127.0.0.1:8080", "shop.internal")


@pytest.mark.parametrize(
    ("text", "env", "says"),
    [
        ('[http]\nallow = ["http://127.0.0.1/"]\n', "", 'is not "host" or "host:port"'),
        ('[http]\nallowed = ["x"]\n', "", "did you mean 'allow'"),
        ("", "https://x", "CHATFLOW_HTTP_ALLOW: 'https://x'"),
    ],
)
def test_a_bad_http_allow_entry_is_a_config_error(text: str, env: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_config(text, Settings.from_env({"CHATFLOW_HTTP_ALLOW": env}))


def test_the_process_that_forwards_comes_from_the_environment() -> None:
    assert Settings.from_env({}).forwarder == "web"
    assert Settings.from_env({"CHATFLOW_FORWARDER": "worker"}).forwarder == "worker"
    with pytest.raises(ConfigError, match=r"CHATFLOW_FORWARDER='both': expected web \(the default\) or worker"):
        Settings.from_env({"CHATFLOW_FORWARDER": "both"})
