"""Any sender that signs its webhooks with an HMAC of the body: header, algorithm, encoding,
prefix and timestamp header are the source's options in chatflow.toml."""

from providers.hmac.source import spec

__all__ = ["spec"]
