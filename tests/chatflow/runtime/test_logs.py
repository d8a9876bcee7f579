import json
import logging
import subprocess
import sys

import pytest

from chatflow.domain.addresses import mask_addresses
from tests.chatflow.runtime.devstack import chatflow_env

SCRIPT = """
import logging
import pytest
from chatflow.runtime.logs import configure_logging
configure_logging(json_lines={json_lines})
log = logging.getLogger("chatflow.test")
log.info("message from %s to %s", "+14155550100", "whatsapp:+447700900123")
logging.getLogger("uvicorn.access").info('%s - "%s %s"', "127.0.0.1", "GET", "/console/messages?customer=%2B14155550100")
try:
    raise ValueError("cannot send to +14155550100")
except ValueError:
    log.exception("send failed")
"""


def run(json_lines: bool) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(json_lines=json_lines)],
        capture_output=True,
        text=True,
        env=chatflow_env(),
        check=True,
    )
    return done.stderr


def test_masks_e164_numbers_keeping_their_ends() -> None:
    assert mask_addresses("from +14155550100.") == "from +1415*****00."
    assert mask_addresses("customer=%2B447700900123") == "customer=%2B4477******23"
    assert mask_addresses("order 12345678 at 2026-01-01") == "order 12345678 at 2026-01-01"


def test_email_addresses_are_masked_by_their_kind_and_a_conversation_keeps_our_sender() -> None:
    assert mask_addresses("sent to Ana.Lopez@example.com.") == "sent to A***@example.com."
    assert mask_addresses("to=ana%40example.com&x=1") == "to=a***%40example.com&x=1"
    assert (
        mask_addresses("ended chat:email:support@shop.example:ana@example.com")
        == "ended chat:email:support@shop.example:a***@example.com"
    )


def test_plain_log_lines_hold_no_full_phone_number() -> None:
    output = run(json_lines=False)
    assert "14155550100" not in output and "447700900123" not in output
    assert "message from +1415*****00 to whatsapp:+4477******23" in output
    assert "customer=%2B1415*****00" in output
    assert "ValueError: cannot send to +1415*****00" in output  # tracebacks too


def test_json_log_lines_hold_no_full_phone_number() -> None:
    lines = [json.loads(line) for line in run(json_lines=True).splitlines()]
    assert lines[0]["message"] == "message from +1415*****00 to whatsapp:+4477******23"
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "chatflow.test"
    assert "+1415*****00" in lines[2]["error"] and "14155550100" not in json.dumps(lines)


def test_the_filter_leaves_records_formattable() -> None:
    from chatflow.runtime.logs import MaskAddresses

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", ("+14155550100",), None)
    assert MaskAddresses().filter(record)
    assert record.getMessage() == "to +1415*****00"


def test_a_conversation_id_keeps_our_number_and_masks_the_customer() -> None:
    assert mask_addresses("ended chat:sms:+15005550006:+14155550100.") == "ended chat:sms:+15005550006:+1415*****00."
    # URL-encoded in an access log line, and a WhatsApp user id (no phone number) left alone.
    assert (
        mask_addresses("/c/chat%3Asms%3A%2B15005550006%3A%2B14155550100")
        == "/c/chat%3Asms%3A%2B15005550006%3A%2B1415*****00"
    )
    assert mask_addresses("chat:whatsapp:+15005550006:US.1349") == "chat:whatsapp:+15005550006:US.1349"


FAILURES = """
import logging
import temporalio.activity
from temporalio.exceptions import ApplicationError
from chatflow.runtime.logs import configure_logging
configure_logging(json_lines={json_lines})
info = {{"activity_type": "http_request", "attempt": 2, "workflow_id": "chat:sms:+15005550006:+14155550100",
         "workflow_run_id": "0198-run"}}
log = logging.getLogger("temporalio.activity")
for error in (ApplicationError("GET https://shop.example/api answered 503", 503, non_retryable=True),
              KeyError("customer_id")):
    try:
        raise error
    except Exception:
        log.warning("Completing activity as failed", exc_info=True, extra={{"temporal_activity": info}})
"""


def run_failures(json_lines: bool) -> str:
    done = subprocess.run(
        [sys.executable, "-c", FAILURES.format(json_lines=json_lines)],
        capture_output=True,
        text=True,
        env=chatflow_env(),
        check=True,
    )
    return done.stderr


def test_a_handled_activity_failure_is_one_line_and_a_bug_keeps_its_traceback() -> None:
    handled, *bug = run_failures(json_lines=False).splitlines()
    assert handled.endswith(
        "WARNING temporalio.activity: activity http_request attempt 2 failed (not retried): "
        "GET https://shop.example/api answered 503 [conversation chat:sms:+15005550006:+1415*****00]"
    )
    assert bug[0].endswith(
        "WARNING temporalio.activity: Completing activity as failed [conversation chat:sms:+15005550006:+1415*****00]"
    )
    assert bug[1] == "Traceback (most recent call last):" and bug[-1] == "KeyError: 'customer_id'"


def test_json_lines_name_the_conversation_and_run() -> None:
    handled, bug = (json.loads(line) for line in run_failures(json_lines=True).splitlines())
    assert (handled["conversation"], handled["run_id"]) == ("chat:sms:+15005550006:+1415*****00", "0198-run")
    assert "error" not in handled and "Traceback" in bug["error"]


HTTPX_SCRIPT = """
import httpx
from chatflow.runtime.logs import configure_logging
configure_logging()
transport = httpx.MockTransport(lambda request: httpx.Response(200))
httpx.Client(transport=transport).get("https://api.example.com/orders/A-1", params={"key": "s3cret-key"})
"""


def test_urls_in_log_lines_lose_their_query_strings() -> None:
    """httpx logs every request's URL at INFO: an API key in its query must not follow it."""
    done = subprocess.run(
        [sys.executable, "-c", HTTPX_SCRIPT], capture_output=True, text=True, env=chatflow_env(), check=True
    )
    assert "s3cret-key" not in done.stderr
    assert 'HTTP Request: GET https://api.example.com/orders/A-1?… "HTTP/1.1 200 OK"' in done.stderr


@pytest.mark.parametrize(
    "line, masked",
    [
        ("from 14155550100 (Meta's wa_id)", "from 1415*****00 (Meta's wa_id)"),
        ("to +1 415 555 0100 now", "to +1415*****00 now"),
        ("to +1 (415) 555-0100, ok", "to +1415*****00, ok"),
        ("to +1-415-555-0100.", "to +1415*****00."),
        ("call (415) 555-0100", "call 4155****00"),
        ("whatsapp:+14155550100", "whatsapp:+1415*****00"),
        ("zone +05:30 at 2026-01-01T10:00:00+00:00, +123", "zone +05:30 at 2026-01-01T10:00:00+00:00, +123"),
    ],
)
def test_every_phone_format_the_app_accepts_is_masked(line: str, masked: str) -> None:
    assert mask_addresses(line) == masked
