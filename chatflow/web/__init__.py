"""Web: the only code that imports starlette and uvicorn (webhooks, console, journeys API, health, metrics)."""
