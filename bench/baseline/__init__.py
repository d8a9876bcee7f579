"""The baseline: the demo flow as a careful engineer's first version on plain temporalio.

A webhook that checks Twilio's signature and signal-with-starts a workflow (`app`), a workflow
that sends its two replies through activities, one activity per send, then waits for the next
message with a timeout (`workflow`), and a worker (`worker`). No Redis, no buffer, no local
activities: what chatflow is measured against, on the same Temporal server in the same run.
"""
