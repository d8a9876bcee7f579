"""Standard Webhooks as a source (Svix, Clerk, Resend and others): `webhook-id`,
`webhook-timestamp` and `webhook-signature` checked by the `standardwebhooks` library."""

from providers.standard_webhooks.source import spec

__all__ = ["spec"]
