"""A stand-in for the shop, on http://127.0.0.1:8081: its API (customers' tiers, orders switched to
cash on delivery) and the sink's webhook, which prints each lifecycle event it verifies.

    SHOP_SINK_SECRET=whsec_... python shop.py
"""

import os

import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SINK = Webhook(os.environ["SHOP_SINK_SECRET"])


async def customer(request: Request) -> Response:
    # Customers whose id starts with "vip" are power users.
    tier = "power" if request.path_params["id"].startswith("vip") else "regular"
    return JSONResponse({"id": request.path_params["id"], "tier": tier})


async def order(request: Request) -> Response:
    print(f"order {request.path_params['id']} switched to", (await request.json())["payment_method"])
    return JSONResponse({"id": request.path_params["id"], "payment_method": "cod"})


async def events(request: Request) -> Response:
    event = SINK.verify(await request.body(), dict(request.headers))  # raises when not signed
    print(event["type"], event["data"]["conversation"], event["data"]["detail"], event["data"]["data"])
    return Response(status_code=204)


app = Starlette(
    routes=[
        Route("/api/customers/{id}", customer),
        Route("/api/orders/{id}", order, methods=["PUT"]),
        Route("/chatflow-events", events, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=8081)
