"""Segment's webhook destination as a source: `X-Signature`, HMAC-SHA1 of the body."""

from providers.segment.sink import sink_spec
from providers.segment.source import spec

__all__ = ["sink_spec", "spec"]
