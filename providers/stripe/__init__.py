"""Stripe as a source: `Stripe-Signature` checked with Stripe's own verifier, events by type."""

from providers.stripe.source import spec

__all__ = ["spec"]
