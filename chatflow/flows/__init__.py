"""Flows: the authoring API and the pure engine that runs a flow against a port.

No temporalio, no Redis, no HTTP: a flow is plain deterministic Python.
"""
