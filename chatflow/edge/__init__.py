"""The Redis edge: what sits between providers and Temporal and is shared by every process.

Dedupe of provider message ids, opt-outs, the outbound rate limiter, the inbound buffer that
keeps messages while Temporal is unreachable, digests and channel fallback. Each module owns one
idea and one family of Redis keys (named in `keys`).
"""
