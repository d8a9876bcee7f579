"""Names and policies shared by the workflow, the activities, the worker and the client.

One place, so the workflow can call activities by name without importing them (and what they
import: providers' HTTP clients, Redis), and so every starter uses the same task queue.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from chatflow.domain.errors import PermanentSendError

TASK_QUEUE = "chatflow"
CONVERSATION_WORKFLOW = "ConversationWorkflow"
DELIVERY_REPORT_WORKFLOW = "DeliveryReportWorkflow"

# Activities, by name.
SEND_MESSAGE = "send_message"
HTTP_REQUEST = "http_request"
NEXT_ALLOWED_SEND = "next_allowed_send"
REPORT_DELIVERY = "report_delivery"
AWAIT_BUFFER = "await_buffer"
# A flow's message to someone on another channel (`Notify`): the sender is resolved by the worker.
NOTIFY = "notify"
# A customer's media, fetched by id into the worker's media folder (`convo.fetch_media`).
FETCH_MEDIA = "fetch_media"
MEDIA_UNAVAILABLE = "MediaUnavailable"
FETCH_MEDIA_TIMEOUT = timedelta(minutes=2)
FETCH_MEDIA_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)

# Patch markers: workflow code changes that old histories must replay around.
SEND_AS_LOCAL_ACTIVITY = "chatflow-send-local-activity"
# A send's local try and the activity that retries it share one activity id, its key in the send ledger.
SEND_ID = "chatflow-send-id"
# Quiet hours hold `End` texts and code steps' sends too (before, only Say, Ask and Handover).
QUIET_HOURS_EVERY_SEND = "chatflow-quiet-hours-every-send"
# Hand-back gives the flow what the customer wrote to the person since their last reply.
HAND_ON_UNANSWERED = "chatflow-hand-on-unanswered"
# Messages handed straight to Temporal during an order hold hold again (asked each time it
# matters, after revision 1: runs of every revision may have held the old way).
HOLD_AGAIN = "chatflow-order-hold-again"
# The shortest timer: it ends a workflow task, so local sends are committed before the run ends.
# Revision 0 runs only: from revision 1 the send ledger answers a local send run again.
COMMIT_LOCAL_SENDS = timedelta(milliseconds=1)
# The workflow code's revision, recorded in each run's pin marker (`pin_marker`). A run of
# revision 1 or later takes every change patched above without asking (no marker each) and
# ends without the commit timer; a run recorded before revisions (0) replays as it was written.
# A Temporal Cloud bill counts a workflow task's markers as one action, a timer as one.
REVISION = 1


def pin_marker(flow: str, version: int, revision: int) -> str:
    """The patch marker that pins a run to `flow`'s `version`, written by code of `revision`."""
    return f"chatflow-flow-{flow}-v{version}" + (f"-r{revision}" if revision else "")


# Error types (ApplicationError.type) that Temporal must not retry.
PERMANENT_SEND_ERROR = PermanentSendError.__name__
HTTP_CLIENT_ERROR = "HttpClientError"
HTTP_SERVER_ERROR = "HttpServerError"
# A call chatflow would not make: an address inside the network, a secret the worker lacks.
HTTP_REFUSED = "HttpRefused"
RETRYABLE_SEND_ERROR = "RetryableSendError"

SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[PERMANENT_SEND_ERROR],
)
# The local first try of a send: once; a retryable failure moves it to a regular activity.
SEND_FIRST_TRY = RetryPolicy(maximum_attempts=1)
# An attempt's limit, and how soon a send stuck on a dead worker is tried again: safe, since the
# send ledger returns the result of a send the provider took instead of sending it again. The
# attempt itself gives up a second before (activities.DEADLINE_MARGIN): a rate-limit wait of at
# most 3 s (send_guard.MAX_INLINE_WAIT), then the provider call, cut at the deadline.
SEND_TIMEOUT = timedelta(seconds=10)
# A message that could not be sent within the hour is stale; the flow's failure branch decides.
SEND_GIVE_UP_AFTER = timedelta(hours=1)
QUIET_HOURS_TIMEOUT = timedelta(seconds=5)
# A message handed straight to Temporal while Redis was away waits, with every later one, until
# the buffer has handed on what it held from before (chatflow.edge.buffer.BufferBarrier): order
# kept across an outage. For at most this long: past it, answers matter more than order (a long
# outage), and what the buffer still holds comes after.
ORDER_HOLD = timedelta(seconds=60)
ORDER_HOLD_HEARTBEAT = timedelta(seconds=10)
ORDER_HOLD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5))
# How long a stopping worker (SIGTERM, a deploy) lets running activities finish before
# cancelling them: a whole send attempt (SEND_TIMEOUT) fits, and the stop stays within
# Kubernetes' default 30 s termination grace period. A cancelled send is retried elsewhere.
WORKER_SHUTDOWN_GRACE = timedelta(seconds=20)


def http_retry(retries: int) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_attempts=retries + 1,
        non_retryable_error_types=[HTTP_CLIENT_ERROR, HTTP_REFUSED],
    )


REPORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=10)
)
REPORT_TIMEOUT = timedelta(seconds=30)
REPORT_GIVE_UP_AFTER = timedelta(days=3)
