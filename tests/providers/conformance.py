"""What every channel gives the conformance suite (tests/providers/test_conformance.py): a kit.

A channel registered in `providers.CHANNELS` has `tests/providers/<name>/kit.py` defining
`KIT = ChannelKit(...)`. The suite builds the channel from `KIT.config()` the way the web app and
the worker do, serves its routes in front of a recorder, and holds it to what chatflow relies on:
a request signed as the provider signs it is taken, a forged one is refused with 403 and changes
nothing, a malformed one is a 4xx, a send the provider refuses is a PermanentSendError or a
RetryableSendError as the refusal says, addresses are masked, and statuses map onto STATUS_RANK.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from chatflow.domain.addresses import Address
from chatflow.domain.channel import Channel
from chatflow.domain.config import Config
from chatflow.domain.messages import OutboundMessage


@dataclass(frozen=True)
class Call:
    """One HTTP request to a channel's route, as the provider (or a forger) makes it."""

    method: str
    url: str  # absolute, under the config's public URL (what the provider signs)
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


# Sets up a provider that fails a send in one way (respx routes, an SMTP server that refuses...)
# and yields the channel, built from the config, with a message it will fail to send.
SendFailure = Callable[[Config], AbstractAsyncContextManager[tuple[Channel, OutboundMessage]]]


@dataclass(frozen=True)
class ChannelKit:
    config: Callable[[], Config]  # binds at least one address to the channel, its settings all set
    good: Call  # carries one message from `customer`, signed as the provider signs it
    bad: Call  # signed as well, but malformed: answered 4xx, nothing received
    customer: Address  # who sends `good`, an address of a kind the channel carries
    permanent: SendFailure  # a refusal that sending again cannot mend
    retryable: SendFailure | None  # a failure worth trying again (None: `no_retryable` says why)
    statuses: list[tuple[Call, str]]  # status callbacks and the chatflow status each maps to
    forged: Call | None = None  # like `good` but not signed with the channel's secret
    no_signature: str = ""  # why `forged` is None: the channel has no signature to forge
    no_retryable: str = ""
    no_statuses: str = ""  # why `statuses` is empty
