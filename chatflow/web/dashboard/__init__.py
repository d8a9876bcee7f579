"""The operator dashboard at /dashboard: conversations listed and filtered, each one live (its
transcript with delivery statuses, data, step on the flow's diagram), ended or told of events.

Server-rendered pages (`views`), one small script polling JSON for live updates (`assets`), sign-in
with CHATFLOW_API_KEY and CSRF tokens (`session`), the list read from Temporal visibility a page at
a time (`listing`). Everything it does to a conversation goes through `chatflow.journeys.service`.
"""

from chatflow.web.dashboard.routes import Dashboard, dashboard_routes

__all__ = ["Dashboard", "dashboard_routes"]
