"""The dashboard in a real Chromium (Debian's, through Playwright), against the app served by
uvicorn with a worker running the demo flow: what an operator does, click by click."""

from __future__ import annotations

import re
from urllib.parse import quote

from playwright.async_api import Locator, Page, expect

from chatflow.domain.addresses import ConversationRef
from chatflow.domain.addresses import mask_value as mask
from chatflow.domain.messages import InboundMessage
from chatflow.edge import keys
from chatflow.edge.buffer import encode
from tests.chatflow.web.dashboard.stack import DEMO_NUMBER, JOURNEY_NUMBER, KEY, Served
from tests.helpers import new_customer, stream_add

GREETING = "Hi! I'm the chatflow demo bot."
WAIT = 20_000  # ms a page may take to show what the worker did


async def sign_in(page: Page, served: Served, path: str = "/dashboard") -> None:
    await page.goto(served.url + path)
    await page.fill("#key", KEY)
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"/dashboard(?!/login)"))


async def take_over(page: Page, operator: str) -> None:
    """Take the open conversation over, as an operator does on its page."""
    await page.fill("#takeover-operator", operator)
    await page.click("#takeover-button")
    await page.wait_for_url(re.compile(r"done=taken"))


def rows(page: Page) -> Locator:
    return page.locator("#conversations tbody tr")


async def filter_list(page: Page, **fields: str) -> None:
    """Fill the filter form as an operator does (everything not given set back to "any")."""
    for name in ("flow", "state", "outcome", "number"):
        await page.select_option(f"#filter-{name}", fields.get(name, ""))
    await page.fill("#filter-customer", fields.get("customer", ""))
    await page.click("#filters button[type=submit]")
    await page.wait_for_load_state()


async def test_sign_in_takes_the_key_and_gives_a_strict_http_only_cookie(page: Page, served: Served) -> None:
    customer = new_customer()
    await served.say(customer, "hi")
    conversation = ConversationRef("sms", DEMO_NUMBER, customer).id
    await served.until(conversation, step="menu")
    target = f"/dashboard/conversations/{quote(conversation, safe=':+')}"

    await page.goto(served.url + target)
    assert "/dashboard/login" in page.url
    await page.fill("#key", "not-the-key")
    await page.click("button[type=submit]")
    await expect(page.locator("#flash")).to_have_text("That is not the API key.")
    await page.fill("#key", KEY)
    await page.click("button[type=submit]")

    await page.wait_for_url(served.url + target)  # back where the operator was going
    await expect(page.locator("#transcript")).to_contain_text(GREETING)
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "chatflow_dashboard"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/dashboard")
    assert "chatflow_dashboard" not in await page.evaluate("document.cookie")

    await page.click("text=Sign out")
    await page.wait_for_url(re.compile("/dashboard/login"))
    await page.goto(served.url + "/dashboard")
    assert "/dashboard/login" in page.url


async def test_the_list_filters_by_flow_state_number_and_customer(page: Page, served: Served) -> None:
    chatting, paying, gone = new_customer(), new_customer(), new_customer()
    await served.say(chatting, "hi")
    payment = await served.start_payment(paying)
    await served.say(gone, "hi")
    await served.until(ConversationRef("sms", DEMO_NUMBER, gone).id, step="menu")
    await served.say(gone, "bye")
    await served.until(payment, step="ask")
    await served.until(ConversationRef("sms", DEMO_NUMBER, chatting).id, step="menu")
    await served.until(ConversationRef("sms", DEMO_NUMBER, gone).id, state="ended")
    await sign_in(page, served)

    await filter_list(page, customer=chatting)
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_contain_text(mask(chatting))
    await expect(rows(page).first).to_contain_text("demo")
    assert chatting not in await page.locator("#conversations").inner_text()  # masked until asked

    await filter_list(page, customer=paying, flow="payment")
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_contain_text(JOURNEY_NUMBER)
    await filter_list(page, customer=paying, flow="demo")
    await expect(rows(page)).to_have_count(0)
    await expect(page.locator("#empty")).to_be_visible()

    await filter_list(page, customer=gone, state="ended")
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_contain_text("completed")
    await filter_list(page, customer=gone, state="running")
    await expect(rows(page)).to_have_count(0)
    await filter_list(page, customer=gone, outcome="completed")
    await expect(rows(page)).to_have_count(1)
    await filter_list(page, customer=gone, outcome="cancelled")
    await expect(rows(page)).to_have_count(0)

    await filter_list(page, customer=paying, number=JOURNEY_NUMBER)
    await expect(rows(page)).to_have_count(1)
    await filter_list(page, customer=paying, number=DEMO_NUMBER)
    await expect(rows(page)).to_have_count(0)

    await filter_list(page, flow="payment", state="running", number=JOURNEY_NUMBER)
    await expect(page.locator("#conversations")).to_contain_text(mask(paying))
    await expect(page.locator("#conversations")).not_to_contain_text(mask(chatting))

    await page.click("#toggle-numbers")
    await expect(page.locator("#conversations")).to_contain_text(paying)
    await expect(page.locator("#filter-flow")).to_have_value("payment")  # the filters stay


async def test_new_messages_and_answers_appear_without_reloading(page: Page, served: Served) -> None:
    customer = new_customer()
    conversation = ConversationRef("sms", DEMO_NUMBER, customer).id
    await served.say(customer, "hi")
    await served.until(conversation, step="menu")
    await sign_in(page, served)
    await filter_list(page, customer=customer)
    await rows(page).first.locator("a").click()
    await page.wait_for_url(re.compile("/dashboard/conversations/"))

    transcript = page.locator("#transcript")
    await expect(transcript).to_contain_text(GREETING)
    await expect(transcript.locator("li.out .status").first).to_have_text("delivered", timeout=WAIT)
    await expect(page.locator('#diagram rect[data-step="menu"]')).to_have_class("current")
    await expect(page.locator("#fact-customer")).to_have_text(mask(customer))
    await page.evaluate("window.stillTheSamePage = true")

    await served.say(customer, "2")  # Track my order
    await expect(transcript.locator("li.in").last).to_have_text(re.compile(r"^2"), timeout=WAIT)
    await expect(transcript.locator("li.out").last).to_contain_text("What's your order number?", timeout=WAIT)
    await expect(page.locator("#fact-step")).to_have_text("ask_order", timeout=WAIT)
    await expect(page.locator("#trace")).to_contain_text("reply to menu matched", timeout=WAIT)
    await expect(page.locator('#diagram rect[data-step="ask_order"]')).to_have_class("current")
    await expect(page.locator('#diagram rect[data-step="menu"]')).not_to_have_class("current")

    await served.say(customer, "A-17")
    await expect(transcript).to_contain_text("Order A-17 is on its way", timeout=WAIT)
    await expect(page.locator("#data")).to_contain_text('"order": "A-17"', timeout=WAIT)
    assert await page.evaluate("window.stillTheSamePage") is True  # never reloaded


async def test_an_operator_ends_a_conversation_with_a_reason(page: Page, served: Served) -> None:
    customer = new_customer()
    conversation = ConversationRef("sms", DEMO_NUMBER, customer).id
    await served.say(customer, "hi")
    await served.until(conversation, step="menu")
    await sign_in(page, served, f"/dashboard/conversations/{quote(conversation, safe=':+')}")

    await page.fill("#end-reason", "customer phoned the shop")
    await page.click("#end-button")

    await page.wait_for_url(re.compile(r"done=ended"))
    await expect(page.locator("#flash")).to_have_text("The conversation is told to end.")
    await expect(page.locator("#fact-state")).to_have_text("ended", timeout=WAIT)
    await expect(page.locator("#fact-outcome")).to_have_text("cancelled")
    await expect(page.locator("#fact-reason")).to_have_text("customer phoned the shop")
    await expect(page.locator("#end-form")).to_be_hidden()
    ended = await served.until(conversation, state="ended")
    assert (ended["outcome"], ended["reason"]) == ("cancelled", "customer phoned the shop")


async def test_an_operator_reports_a_business_event(page: Page, served: Served) -> None:
    conversation = await served.start_payment(new_customer())
    await served.until(conversation, step="ask")
    await sign_in(page, served, f"/dashboard/conversations/{quote(conversation, safe=':+')}")

    await page.fill("#event-name", "payment_succeeded")
    await page.fill("#event-data", "[1, 2]")
    await page.click("#event-button")
    await expect(page.locator("#flash")).to_have_text("data must be a JSON object")
    assert (await served.view(conversation))["state"] == "running"

    await page.fill("#event-name", "payment_succeeded")
    await page.fill("#event-data", '{"amount": 12}')
    await page.click("#event-button")
    await page.wait_for_url(re.compile(r"done=event"))
    await expect(page.locator("#flash")).to_have_text("Event reported.")
    await expect(page.locator("#transcript")).to_contain_text("Thanks, all settled.", timeout=WAIT)
    await expect(page.locator("#fact-state")).to_have_text("ended", timeout=WAIT)
    await expect(page.locator("#fact-outcome")).to_have_text("completed")
    await expect(page.locator('#diagram rect[data-step="paid"]')).to_have_class("current")


async def sent_to(served: Served, customer: str) -> list[str]:
    """What the console provider was asked to send to the customer (the fake provider's record)."""
    lines, _ = await served.services.channels["console"].outbox.read(customer)  # type: ignore[attr-defined]
    return [line.text for line in lines]


async def test_an_operator_takes_over_replies_and_hands_back(page: Page, served: Served) -> None:
    customer = new_customer()
    conversation = ConversationRef("sms", DEMO_NUMBER, customer).id
    await served.say(customer, "hi")
    await served.until(conversation, step="menu")
    await sign_in(page, served, f"/dashboard/conversations/{quote(conversation, safe=':+')}")
    await expect(page.locator("#reply-form")).to_be_hidden()

    await take_over(page, "Ana")
    await expect(page.locator("#fact-operator")).to_have_text("Ana")
    await expect(page.locator("#takeover-form")).to_be_hidden()
    bot_lines = len(await sent_to(served, customer))

    await served.say(customer, "2")  # would be "Track my order": the bot must not answer
    await expect(page.locator("#transcript li.in").last).to_have_text(re.compile(r"^2"), timeout=WAIT)
    await page.fill("#reply-text", "Hi, Ana here. Which order is it?")
    await page.click("#reply-button")
    await page.wait_for_url(re.compile(r"done=sent"))
    await expect(page.locator("#transcript li.out.person").last).to_contain_text("Ana here", timeout=WAIT)
    assert (await sent_to(served, customer))[bot_lines:] == ["Hi, Ana here. Which order is it?"]
    assert (await served.view(conversation))["step"] == "menu"  # the flow did not move

    await page.click("#handback-button")
    await page.wait_for_url(re.compile(r"done=handed"))
    await expect(page.locator("#takeover-form")).to_be_visible(timeout=WAIT)
    await expect(page.locator("#fact-operator")).to_have_text("")
    # How long Ana had it, in words ("after 3 s"), not a timedelta's 0:00:03.123456.
    await expect(page.locator("#trace")).to_contain_text(re.compile(r"handed back by Ana after \d+ (ms|s)\b"))
    assert "0:00:" not in await page.locator("#trace").inner_text()
    await served.say(customer, "2")
    await expect(page.locator("#transcript")).to_contain_text("What's your order number?", timeout=WAIT)


async def test_each_conversation_of_a_customer_opens_on_its_own(page: Page, served: Served) -> None:
    customer = new_customer()
    conversation = ConversationRef("sms", DEMO_NUMBER, customer).id
    await served.say(customer, "hi")
    await served.until(conversation, step="menu")
    await served.say(customer, "bye")
    await served.until(conversation, state="ended")
    await served.say(customer, "hello again")  # a second conversation, a run of its own
    await served.until(conversation, state="running", step="menu")

    await sign_in(page, served)
    await filter_list(page, customer=customer)
    await expect(rows(page)).to_have_count(2)
    await rows(page).last.locator("a").first.click()  # the older one, which has ended
    await expect(page.locator("#fact-state")).to_have_text("ended")
    await expect(page.locator("#transcript")).to_contain_text("Bye! Text us any time.")
    await expect(page.locator("#transcript")).not_to_contain_text("hello again")
    await expect(page.locator("#trace")).to_contain_text("ended: completed")
    await expect(page.locator("#runs li")).to_have_count(2)
    await expect(page.locator("#runs li.current")).to_contain_text("ended")

    await page.locator("#runs li").first.locator("a").click()  # the newer one, from its page
    await expect(page.locator("#fact-state")).to_have_text("running")
    await expect(page.locator("#transcript")).to_contain_text("hello again")
    await expect(page.locator("#transcript")).not_to_contain_text("Bye! Text us any time.")


async def test_a_reply_left_unanswered_in_a_takeover_is_flagged_and_given_to_the_waiting_flow(
    page: Page, served: Served
) -> None:
    customer = new_customer()
    conversation = ConversationRef("sms", DEMO_NUMBER, customer).id
    await served.say(customer, "hi")
    await served.until(conversation, step="menu")
    await sign_in(page, served, f"/dashboard/conversations/{quote(conversation, safe=':+')}")
    await take_over(page, "Ana")
    await expect(page.locator("#unanswered")).to_be_hidden()

    await served.say(customer, "2")  # Track my order, written to Ana, who does not answer
    await expect(page.locator("#unanswered")).to_be_visible(timeout=WAIT)
    await expect(page.locator("#unanswered-texts")).to_have_text("\u201c2\u201d")
    await page.click("#handback-button")
    await page.wait_for_url(re.compile(r"done=handed_unanswered"))
    await expect(page.locator("#flash")).to_contain_text("the customer's messages since your last reply")
    # The flow was waiting at the menu: it answers the "2" without the customer writing again.
    await expect(page.locator("#transcript")).to_contain_text("What's your order number?", timeout=WAIT)
    await expect(page.locator("#trace")).to_contain_text(
        "1 customer message(s) since the last reply, given to step menu"
    )


async def test_the_readme_walk_through_a_demo_customer_asks_for_a_person(page: Page, served: Served) -> None:
    customer = new_customer()
    conversation = ConversationRef("sms", DEMO_NUMBER, customer).id
    await served.say(customer, "hi")
    await served.until(conversation, step="menu")
    await served.say(customer, "3")  # Talk to a person
    await served.until(conversation, step="handoff")
    assert (await sent_to(served, customer))[-1] == "Connecting you with a person..."

    await sign_in(page, served, "/dashboard?step=handoff")
    mine = rows(page).filter(has_text=mask(customer))
    await expect(mine).to_have_count(1)
    await mine.locator("a").first.click()
    await take_over(page, "Ana")
    await page.fill("#reply-text", "Hi, Ana here. How can I help?")
    await page.click("#reply-button")
    await page.wait_for_url(re.compile(r"done=sent"))
    await page.click("#handback-button")
    await page.wait_for_url(re.compile(r"done=handed"))
    await expect(page.locator("#transcript")).to_contain_text("You're back with the demo bot.", timeout=WAIT)
    assert (await sent_to(served, customer))[-3:-1] == [
        "Hi, Ana here. How can I help?",
        "You're back with the demo bot.",
    ]


async def test_the_flows_page_shows_where_customers_wait_and_how_they_ended(page: Page, served: Served) -> None:
    waiting, done = new_customer(), new_customer()
    for customer in (waiting, done):
        await served.say(customer, "hi")
        await served.until(ConversationRef("sms", DEMO_NUMBER, customer).id, step="menu")
    await served.say(done, "bye")
    await served.until(ConversationRef("sms", DEMO_NUMBER, done).id, state="ended")
    await sign_in(page, served, "/dashboard/flows")

    demo = page.locator("#flow-demo")
    await expect(demo).to_contain_text("deployed: v1")
    menu = demo.locator("table.counts tr", has_text="menu").first
    await expect(menu).to_be_visible()
    waiting_there = int(await menu.locator("td.count").inner_text())
    assert waiting_there >= 1
    await expect(demo.locator(".diagram svg")).to_have_count(1)
    await page.click("#period-7d")
    await page.wait_for_url(re.compile(r"period=7d"))
    completed = page.locator("#flow-demo table.counts tr", has_text="completed").first
    assert int(await completed.locator("td.count").inner_text()) >= 1
    # The ends every flow has are told apart from the flow's own steps.
    endings = page.locator("#flow-demo table.counts", has_text="Ending reached")
    await expect(endings.locator("tr", has_text="cancelled (built-in)")).to_have_count(1)
    await expect(endings.locator("tr", has_text="goodbye (built-in)")).to_have_count(0)

    await page.locator("#flow-demo table.counts tr", has_text="menu").first.locator("a").click()
    await page.wait_for_url(re.compile(r"step=menu"))
    await expect(page.locator("#filter-step")).to_have_value("menu")
    await expect(rows(page)).to_have_count(min(waiting_there, 25))
    await expect(page.locator("#conversations")).to_contain_text("menu")


async def test_the_operations_page_retries_dead_letters_and_looks_up_opt_outs(page: Page, served: Served) -> None:
    customer = new_customer()
    message = InboundMessage(
        id=f"CM{customer[1:]}", channel="sms", provider="console", customer=customer, number=DEMO_NUMBER, text="hi"
    )
    redis = served.services.redis
    fields = {
        "m": encode(message, "demo"),
        "reason": "Temporal refused it 5 times",
        "kind": "refused",
        "partition": "0",
    }
    await stream_add(redis, keys.inbox_dead(), fields)
    opted_out = new_customer()
    await redis.sadd(keys.opted_out(JOURNEY_NUMBER), opted_out)

    await sign_in(page, served, "/dashboard/operations")
    letter = page.locator("#dead-letters tbody tr", has_text="Temporal refused it 5 times").last
    await expect(letter).to_contain_text(mask(customer))
    await letter.locator("button.retry").click()
    await page.wait_for_url(re.compile(r"done=retried"))
    await expect(page.locator("#flash")).to_have_text("Handed to the forwarder again.")
    await served.until(ConversationRef("sms", DEMO_NUMBER, customer).id, step="menu")  # forwarded: the demo answered

    await page.fill("#optout-customer", opted_out)
    await page.click("#optout-form button[type=submit]")
    await expect(page.locator("#optout-result")).to_contain_text(f"{JOURNEY_NUMBER}: opted out")
    await expect(page.locator("#optout-result")).to_contain_text(f"{DEMO_NUMBER}: subscribed")
    await page.fill("#optout-customer", "12")
    await page.click("#optout-form button[type=submit]")
    await expect(page.locator("#flash")).to_contain_text("customer")
