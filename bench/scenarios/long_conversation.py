"""3. One long conversation: is message 1,000 answered as fast as message 10?

The customer says "hi", then "1" again and again (opening hours, then the menu again): two
replies a turn. The app passes the bench's history limit to the workflow, so it continues as
new every few dozen messages and its history stays short however long the conversation gets.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.config import NUMBER
from bench.sizes import Sizes
from bench.stack import Stack
from chatflow.domain.addresses import ConversationRef

WINDOW = 10  # messages whose median is reported at each mark: one message is one sample
TIMEOUT = 60.0


async def _runs(stack: Stack, workflow_id: str) -> int:
    """How many runs the conversation has had (1 + its continue-as-new count); 0 if unknown."""
    try:
        return len([w async for w in stack.client.list_workflows(f'WorkflowId = "{workflow_id}"')])
    except Exception:  # noqa: BLE001 - the count is informative only
        return 0


async def run(stack: Stack, sizes: Sizes) -> dict[str, Any]:
    marks = sorted(sizes.long_marks)
    print(f"\n== 3. one long conversation, answer time at messages {', '.join(map(str, marks))} ==", flush=True)
    customer = stack.new_customer()
    samples: dict[int, float] = {}
    replies = 0
    started = time.perf_counter()
    for number in range(1, marks[-1] + 1):
        began = time.perf_counter()
        await stack.post_webhook(customer, "hi" if number == 1 else "1")
        answered = await stack.fake.nth_send(customer, replies + 1, TIMEOUT)
        replies += 2
        await stack.fake.nth_send(customer, replies, TIMEOUT)  # the menu again: idle before the next
        samples[number] = answered - began
        if number in marks:
            window = [samples[n] for n in range(max(2, number - WINDOW + 1), number + 1)]
            print(
                f"  message {number:>5}: median of last {len(window)} {statistics.median(window) * 1000:7.1f} ms",
                flush=True,
            )
    at: dict[str, float] = {}
    for mark in marks:
        window = [samples[n] for n in range(max(2, mark - WINDOW + 1), mark + 1)]
        at[str(mark)] = round(statistics.median(window) * 1000, 2)
    runs = await _runs(stack, ConversationRef("sms", NUMBER, customer).id)
    result = {
        "history_limit": stack.history_limit,
        "messages": marks[-1],
        "seconds": round(time.perf_counter() - started, 1),
        "answer_ms_at": at,
        "runs": runs,
        "last_vs_first_ratio": round(at[str(marks[-1])] / at[str(marks[0])], 3) if at[str(marks[0])] else 0.0,
    }
    print(
        f"  runs (continue-as-new + 1): {runs}; message {marks[-1]} / message {marks[0]}: {result['last_vs_first_ratio']:.2f}",
        flush=True,
    )
    return result
