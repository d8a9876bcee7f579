import pytest

from chatflow.domain.config import ConfigError, Settings
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


def test_edge_settings_of_a_number_are_read():
    config = parse_config(TOML, Settings())
    sms, whatsapp = config.numbers
    assert (sms.rate, sms.help_text, sms.keywords) == (5.0, "Acme support: reply STOP to stop.", {"JOIN": "signup"})
    assert (whatsapp.rate, whatsapp.fallback_number) == (0.0, "+15005550006")


def test_callback_settings_come_from_the_environment():
    settings = Settings.from_env({"CHATFLOW_CALLBACK_URL": "https://b.example/s", "CHATFLOW_CALLBACK_SECRET": "k"})
    assert (settings.callback_url, settings.callback_secret) == ("https://b.example/s", "k")


@pytest.mark.parametrize("line, says", [('rate = "fast"', "rate"), ('fallback_number = "12"', "fallback_number")])
def test_bad_edge_settings_are_config_errors(line: str, says: str):
    with pytest.raises(ConfigError, match=says):
        parse_config(f'[[numbers]]\nnumber = "+15005550006"\nprovider = "console"\nflow = "demo"\n{line}\n', Settings())
