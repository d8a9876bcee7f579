"""Post a PaymentIntent event to chatflow as Stripe would, signed with STRIPE_WEBHOOK_SECRET.

python pay.py failed A-1001 vip-7 +14155550123 ana@example.com
python pay.py succeeded A-1001 vip-7 +14155550123 ana@example.com
"""

import json
import os
import sys
import time
import uuid

import httpx
import stripe

outcome, order_id, customer_id, phone, email = sys.argv[1:6]
event = {
    "id": f"evt_{uuid.uuid4().hex[:24]}",
    "object": "event",
    "type": f"payment_intent.{'payment_failed' if outcome == 'failed' else 'succeeded'}",
    "created": int(time.time()),
    "data": {
        "object": {
            "id": f"pi_{uuid.uuid4().hex[:24]}",
            "object": "payment_intent",
            "metadata": {
                "order_id": order_id,
                "customer_id": customer_id,
                "phone": phone,
                "email": email,
                "payment_link": f"https://pay.example/{order_id}",
            },
        }
    },
}
body = json.dumps(event)
signature = stripe.WebhookSignature.generate_signature_header(body, os.environ["STRIPE_WEBHOOK_SECRET"])
answer = httpx.post(
    os.environ.get("CHATFLOW_URL", "http://127.0.0.1:8000") + "/webhooks/stripe",
    content=body,
    headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
)
print(answer.status_code, answer.text)
