"""Temporal: the only code that imports temporalio (workflow, activities, client, worker, replay, test harness)."""
