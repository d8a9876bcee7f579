"""The business's own webhook as a sink: each lifecycle event POSTed as Standard Webhooks sign."""

from providers.webhook.sink import spec

__all__ = ["spec"]
