"""`[[sources]]` in chatflow.toml: each mistake is one ConfigError saying what and where."""

import pytest

from chatflow.domain.config import Settings
from chatflow.domain.errors import ConfigError
from chatflow.domain.source import SourceMapping
from chatflow.journeys.sources import ConfiguredSource
from chatflow.runtime.config import parse_config
from chatflow.runtime.sources import load_sources

mapping = SourceMapping()
not_a_mapping = {"payment_intent.succeeded": None}

NUMBERS = """
[[numbers]]
number = "+15005550006"
provider = "console"
channel = "console"
flow = "demo"
"""


def sources(entry: str, environment: dict[str, str] | None = None) -> list[ConfiguredSource]:
    settings = Settings.from_env(environment if environment is not None else {"STRIPE_WEBHOOK_SECRET": "whsec_x"})
    config = parse_config(NUMBERS + "[[sources]]\n" + entry, settings)
    return load_sources(config, reserved_paths=["/webhooks/twilio"])


def test_a_source_is_built_with_its_mapping_and_its_kind_s_redelivery() -> None:
    (stripe,) = sources(f'name = "stripe"\nkind = "stripe"\nmapping = "{__name__}"\nfrom = "+15005550006"')
    assert stripe.mapping is mapping
    assert stripe.redelivery.days == 3
    assert stripe.binding.from_ == "+15005550006"
    (stripe,) = sources(f'name = "stripe"\nkind = "stripe"\nmapping = "{__name__}:mapping"\nredelivery_hours = 96')
    assert stripe.redelivery.days == 4


@pytest.mark.parametrize(
    ("entry", "environment", "reason"),
    [
        ('name = "stripe"\nkind = "stripes"\nmapping = "{m}"', None, "kind 'stripes' is not one of stripe"),
        ('name = "stripe"\nkind = "stripe"\nmapping = "{m}"', {}, "needs STRIPE_WEBHOOK_SECRET in the environment"),
        ('name = "stripe"\nkind = "stripe"\nmapping = "{m}"\ntolerence = 5', None, "unknown key 'tolerence'"),
        (
            'name = "stripe"\nkind = "stripe"\nmapping = "no_such_module"',
            None,
            "mapping module 'no_such_module' not found",
        ),
        ('name = "stripe"\nkind = "stripe"\nmapping = "{m}:not_a_mapping"', None, "is not a SourceMapping"),
        ('name = "Stripe Payments"\nkind = "stripe"\nmapping = "{m}"', None, "must be lower-case letters"),
        ('name = "stripe"\nkind = "stripe"', None, 'needs mapping = "..."'),
        ('name = "stripe"\nkind = "stripe"\nmapping = "{m}"\nfrom = "12"', None, "from"),
        ('name = "twilio"\nkind = "hmac"\nmapping = "{m}"', {"TWILIO_WEBHOOK_SECRET": "s"}, "is a channel's route"),
    ],
)
def test_a_mistake_is_one_config_error_naming_it(entry: str, environment: dict[str, str] | None, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason.replace("(", r"\(").replace("[", r"\[")):
        sources(entry.replace("{m}", __name__), environment)
