"""Mixpanel's cohort syncs to a custom webhook as a source, behind HTTP basic auth."""

from providers.mixpanel.sink import sink_spec
from providers.mixpanel.source import spec

__all__ = ["sink_spec", "spec"]
