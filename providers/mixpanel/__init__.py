"""Mixpanel's cohort syncs to a custom webhook as a source, behind HTTP basic auth."""

from providers.mixpanel.source import spec

__all__ = ["spec"]
