"""Every error chatflow raises on purpose, in one tree.

    ChatflowError
    ├── ConfigError                 chatflow.toml or the environment is wrong (CLI: one line, exit 2)
    ├── StartupError                a process cannot start (Temporal unreachable, port taken...)
    ├── FlowDefinitionError         a flow that cannot run, found when its class is defined
    │   └── UnknownFlow             no deployed flow (or version) of that name
    ├── FlowError                   a flow failed while running a conversation
    │   ├── TemplateError           a template names a key the data lacks
    │   ├── LoopDetected            the loop guard stopped a flow repeating itself
    │   ├── HttpCallFailed          a flow's HTTP call did not answer 2xx after its retries
    │   └── MediaUnavailable        a customer's media could not be fetched (gone, too large...)
    ├── SendError                   a provider did not take a message
    │   ├── PermanentSendError      retrying cannot help (invalid number, opted out, window closed)
    │   └── RetryableSendError      try again later (429, 5xx, network, rate limited)
    └── Refused                     bad input or a request that cannot be done now; `reason` says why
        ├── BadRequest              malformed (not JSON, a field missing, a number that is no number)
        ├── Unauthorized            no or wrong credentials (an API key)
        ├── Forbidden               a webhook whose signature does not hold
        ├── NotFound                no such conversation, number or broadcast
        ├── Conflict                the conversation's state does not allow it now
        ├── Invalid                 well-formed, but not something that can be done (an unknown flow)
        ├── TooLarge                over the size limit
        ├── UnsupportedMediaType    wrong Content-Type
        ├── Unavailable             a store behind the request is unreachable; retry later
        └── TooManyRequests         too many failed tries (or new console customers); `retry_after` says when

Only the web layer turns `Refused` into HTTP status codes (`chatflow.web.errors`).
"""

from __future__ import annotations


class ChatflowError(Exception):
    """Base of every error chatflow raises on purpose."""


class ConfigError(ChatflowError, ValueError):
    pass


class StartupError(ChatflowError, RuntimeError):
    """Something outside the config stops a process from starting (Temporal unreachable...)."""


class FlowDefinitionError(ChatflowError):
    """A flow that cannot run: the message names the flow, the step and the fix; `step` is that
    step's name when one is at fault (to point at the line declaring it)."""

    def __init__(self, message: str, *, step: str = "") -> None:
        super().__init__(message)
        self.step = step


class UnknownFlow(FlowDefinitionError, LookupError):
    pass


class FlowError(ChatflowError):
    """A flow failed while running; the conversation takes its failure branch with the reason."""


class TemplateError(FlowError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class LoopDetected(FlowError):
    pass


class HttpCallFailed(FlowError):
    def __init__(self, reason: str, status: int = 0) -> None:
        super().__init__(reason)
        self.status = status


class MediaUnavailable(FlowError):
    """A customer's media could not be fetched; `retryable` when asking again may help (the
    provider's 429 or 5xx, the network), not for one gone, too large or not what it claimed."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable


class SendError(ChatflowError):
    """A provider did not take a message; `code` is the provider's own error code when given."""

    def __init__(self, reason: str, code: str = "") -> None:
        super().__init__(reason)
        self.code = code


class PermanentSendError(SendError):
    """Retrying cannot help: invalid number, opted out, outside the WhatsApp 24-hour window...

    `fallback`: the SMS number and its provider that may say it instead, when WhatsApp refused
    the message as outside its window (`WINDOW_REFUSALS`) and the number has a fallback_number.
    """

    def __init__(self, reason: str, code: str = "", fallback: tuple[str, str] | None = None) -> None:
        super().__init__(reason, code)
        self.fallback = fallback


# WhatsApp's refusals of a message the customer is not in a window for, which another channel may
# still carry: Meta's re-engagement (131047) and undeliverable (131026), Twilio's 63016.
WINDOW_REFUSALS = frozenset({"131047", "131026", "63016"})


class RetryableSendError(SendError):
    """Try again later (429, 5xx, network); `retry_after` in seconds when the provider said."""

    def __init__(self, reason: str, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason, code)
        self.retry_after = retry_after


class Refused(ChatflowError):
    """A request refused with a reason the caller can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(Refused, ValueError):
    pass


class Unauthorized(Refused):
    pass


class Forbidden(Refused):
    pass


class Invalid(Refused, ValueError):
    pass


class NotFound(Refused, LookupError):
    pass


class Conflict(Refused):
    pass


class TooLarge(Refused):
    pass


class UnsupportedMediaType(Refused):
    pass


class Unavailable(Refused):
    pass


class TooManyRequests(Refused):
    """Too many tries from one client; `retry_after` is the seconds until it may try again."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
