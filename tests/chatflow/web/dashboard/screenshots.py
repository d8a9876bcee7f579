"""Screenshots of the dashboard's pages for the README, taken in Debian's Chromium:

    python -m tests.chatflow.web.dashboard.screenshots [docs/dashboard]

Starts what the browser tests start (a Temporal dev server, Valkey, the app under uvicorn, a
worker with the demo flow), has a few customers talk to it, signs in, takes one conversation
over, and saves login.png, conversations.png, conversation.png, flows.png and operations.png.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import quote

from chatflow.domain.addresses import ConversationRef
from chatflow.runtime.services import connect_redis
from chatflow.runtime.testing import start_valkey
from chatflow.testing import dev_server
from tests.chatflow.web.dashboard.stack import DEMO_NUMBER, KEY, chromium, served_dashboard

OUT = Path("docs/dashboard")


async def take(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    valkey = start_valkey()
    try:
        async with dev_server() as env:
            redis = connect_redis(valkey.connection_url)
            async with served_dashboard(env.client, redis) as served:
                shopper = "+14155550123"
                chats = {
                    shopper: ["hi", "2", "A-1042", "1"],
                    "+14155550178": ["hello", "3"],
                    "+447700900461": ["hi", "bye"],
                    "+14155550199": ["hey"],
                }
                for customer, texts in chats.items():
                    for text in texts:
                        await served.say(customer, text)
                        await asyncio.sleep(0.4)
                for customer in ("+14155550142", "+12125550187"):
                    await served.start_payment(customer)
                ended = "+13105550116"
                await served.say(ended, "hi")
                await served.until(ConversationRef("sms", DEMO_NUMBER, ended).id, step="menu")
                conversation = ConversationRef("sms", DEMO_NUMBER, shopper).id
                await served.until(conversation, step="menu", data={"order": "A-1042"})

                async with chromium() as browser:
                    page = await browser.new_page()
                    await page.set_viewport_size({"width": 1280, "height": 860})
                    await page.goto(f"{served.url}/dashboard")
                    await page.screenshot(
                        path=str(out / "login.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 380}
                    )
                    await page.fill("#key", KEY)
                    await page.click("button[type=submit]")
                    await page.wait_for_url(f"{served.url}/dashboard")
                    ending = f"{served.url}/dashboard/conversations/{quote(ConversationRef('sms', DEMO_NUMBER, ended).id, safe=':+')}"
                    await page.goto(ending)
                    await page.fill("#end-reason", "customer phoned the shop")
                    await page.click("#end-button")
                    await page.wait_for_url("**done=ended")
                    await page.goto(f"{served.url}/dashboard")
                    await page.wait_for_selector("#conversations tbody tr")
                    await page.screenshot(path=str(out / "conversations.png"), full_page=True)
                    await page.goto(f"{served.url}/dashboard/conversations/{quote(conversation, safe=':+')}")
                    await page.fill("#takeover-operator", "Ana")
                    await page.click("#takeover-button")
                    await page.wait_for_url("**done=taken")
                    await served.say(shopper, "can I change the delivery address?")
                    await page.fill("#reply-text", "Hi, Ana here. Yes: which address should we use?")
                    await page.click("#reply-button")
                    await page.wait_for_url("**done=sent")
                    await page.wait_for_selector("#transcript li.person")
                    await page.screenshot(path=str(out / "conversation.png"), full_page=True)
                    await page.goto(f"{served.url}/dashboard/flows")
                    await page.wait_for_selector("#flow-demo")
                    await page.screenshot(path=str(out / "flows.png"), full_page=True)
                    await page.goto(f"{served.url}/dashboard/operations?customer=%2B14155550123")
                    await page.wait_for_selector("#optout-result")
                    await page.screenshot(path=str(out / "operations.png"), full_page=True)
            await redis.aclose()
    finally:
        valkey.stop()
    for name in ("login", "conversations", "conversation", "flows", "operations"):
        print(out / f"{name}.png")


if __name__ == "__main__":
    asyncio.run(take(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
