"""The journeys API described as OpenAPI 3.1, served at /openapi.json.

Written by hand rather than generated from docstrings: the request and answer shapes are the
contract businesses code against, so they are stated here once, on purpose.

One vocabulary everywhere: a conversation's `state` is `running` or `ended`; once ended, its
`outcome` is `completed`, `cancelled`, `expired`, `failed` (the flow's own End steps) or
`terminated` (Temporal stopped it: `DELETE` of a conversation that could not end itself), and its
`reason` says why it ended that way (none for `completed`).
"""

from __future__ import annotations

from typing import Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "refused; `error` says why")
STATES = ["running", "ended"]
WHEN_BUSY = ["interrupt", "skip", "queue", "beside"]  # chatflow.journeys.service.WHEN_BUSY
OUTCOMES = ["completed", "cancelled", "expired", "failed", "terminated"]
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "conversation id, `chat:<channel>:<our number>:<customer>`. The id as a log line shows it, "
    "with the customer's number masked (`chat:sms:+15005550006:+1415*****00`), works too when one "
    "conversation matches it (409 when several do).",
}
_SCOPE = {
    "name": "scope",
    "in": "query",
    "required": True,
    "schema": {"type": "string"},
    "description": "one of our numbers (E.164), or `brand:<name>` for every number of a brand",
}
_CUSTOMER = {"name": "customer", "in": "path", "required": True, "schema": {"type": "string"}, "description": "E.164"}
_RECORDS = {"type": "array", "items": _ref("ConsentRecord")}
_ERRORS = {str(code): _ERROR for code in (400, 401, 404, 409, 413, 415, 422, 429)}
# `?limit=`: ASCII digits only, 1 to 1000.
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "chatflow journeys API",
        "version": "1",
        "description": "Start flows for customers from your backend, follow them, and send them events.",
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/conversations": {
            "post": {
                "summary": "Start a flow for a customer (a journey)",
                "description": "With `idempotency_key`, repeating the request never starts a second "
                "conversation. When the customer is already in a conversation on that number the "
                "flow's `when_busy` (or the request's) decides: interrupt it, skip (409), queue behind it, or "
                "start beside it (a conversation of its own, with its own id; replies go to the one waiting "
                "for them).",
                "requestBody": {"required": True, **_json(_ref("JourneyRequest"), "the journey")},
                "responses": {"202": _json(_ref("Started"), "started, queued, or a duplicate"), **_ERRORS},
            },
            "get": {
                "summary": "List conversations",
                "parameters": [
                    {"name": n, "in": "query", "schema": schema, "description": d}
                    for n, schema, d in (
                        ("flow", {"type": "string"}, "only conversations that started with this flow"),
                        ("state", {"enum": STATES}, "`running` or `ended`"),
                        (
                            "number",
                            {"type": "string"},
                            "only conversations on this number of ours, E.164 (`%2B15005550006` in a URL)",
                        ),
                        ("limit", _LIMIT, "at most this many (default 100)"),
                    )
                ],
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"conversations": {"type": "array", "items": _ref("Listed")}}},
                        "conversations, newest first: one entry per run (a customer who talked to a "
                        "number twice has two, told apart by `run_id`)",
                    ),
                    **_ERRORS,
                },
            },
        },
        "/api/conversations/{id}": {
            "get": {
                "summary": "A conversation: state, data, outcome and transcript with delivery statuses",
                "parameters": [_ID],
                "responses": {"200": _json(_ref("Conversation"), "the conversation"), **_ERRORS},
            },
            "delete": {
                "summary": "End a conversation: its flow takes its `cancelled` step (a conversation that cannot "
                "end itself within 5 s, with no worker to run it, is terminated: outcome `terminated`)",
                "parameters": [_ID, {"name": "reason", "in": "query", "schema": {"type": "string"}}],
                "responses": {
                    "202": _json({"type": "object"}, "ending"),
                    "200": _json({"type": "object"}, "had ended"),
                    **_ERRORS,
                },
            },
        },
        "/api/conversations/{id}/events": {
            "post": {
                "summary": "Report a business event (payment_succeeded...) into a running conversation",
                "description": "422 when the conversation's flow waits for no event of that name in any "
                "of its steps (the answer names those it waits for); 409 when the conversation has ended.",
                "parameters": [_ID],
                "requestBody": {"required": True, **_json(_ref("Event"), "the event")},
                "responses": {"202": _json({"type": "object"}, "delivered to the conversation"), **_ERRORS},
            }
        },
        "/api/events": {
            "post": {
                "summary": "Report a business event by the key that identifies its conversations "
                '({"order_id": "A-1001"}): to every running conversation of a flow declaring that key '
                "(`keys`) and waiting for the event",
                "description": "status `delivered` names the conversations; `kept` when none is open yet: "
                "the event waits 15 minutes for one to start and is delivered to it once (its `id`).",
                "requestBody": {"required": True, **_json(_ref("EventByKey"), "the event and its key")},
                "responses": {"202": _json({"type": "object"}, "delivered or kept"), **_ERRORS},
            }
        },
        "/api/conversations/{id}/takeover": {
            "post": {
                "summary": "A person takes the conversation over: the bot sends nothing and its timers stand "
                "still until it is handed back",
                "description": "409 when another operator has it, or the conversation is not running.",
                "parameters": [_ID],
                "requestBody": {"required": True, **_json(_ref("Operator"), "who takes it over")},
                "responses": {"200": _json({"type": "object"}, "taken over"), **_ERRORS},
            }
        },
        "/api/conversations/{id}/replies": {
            "post": {
                "summary": "The operator's message to the customer, sent as the bot's are (opt-out, rate "
                "limit, the WhatsApp window)",
                "description": "409 when the conversation is not this operator's, or the send was refused "
                "(`error` says why); the answer carries the provider's message id.",
                "parameters": [_ID],
                "requestBody": {"required": True, **_json(_ref("OperatorReply"), "the reply")},
                "responses": {"200": _json({"type": "object"}, "sent"), **_ERRORS},
            }
        },
        "/api/conversations/{id}/handback": {
            "post": {
                "summary": "Give the conversation back to the bot: the flow goes on where it was (a "
                "Handover step takes its `then` branch)",
                "parameters": [_ID],
                "requestBody": {"required": True, **_json(_ref("Operator"), "who hands it back")},
                "responses": {"200": _json({"type": "object"}, "handed back"), **_ERRORS},
            }
        },
        "/api/broadcasts": {
            "post": {
                "summary": "Start the same flow for many customers, paced by the sender's rate",
                "requestBody": {"required": True, **_json(_ref("BroadcastRequest"), "the broadcast")},
                "responses": {
                    "202": _json({"type": "object"}, "accepted; follow it at /api/broadcasts/{id}"),
                    **_ERRORS,
                },
            }
        },
        "/api/digests": {
            "post": {
                "summary": "Collect an event into the customer's digest: one run of the flow per window",
                "requestBody": {"required": True, **_json(_ref("DigestEvent"), "the event")},
                "responses": {"202": _json({"type": "object"}, "collected; `pending` events so far"), **_ERRORS},
            }
        },
        "/api/dead-letters": {
            "get": {
                "summary": "Messages the forwarder put aside (too large, unreadable, refused by Temporal), oldest first",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": _LIMIT, "description": "at most this many (default 100)"}
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["dead_letters", "total"],
                            "properties": {
                                "dead_letters": {"type": "array", "items": _ref("DeadLetter")},
                                "total": {"type": "integer", "description": "dead letters kept, listed or not"},
                            },
                        },
                        "the dead letters",
                    ),
                    **_ERRORS,
                },
            }
        },
        "/api/dead-letters/{id}/retry": {
            "post": {
                "summary": "Put a dead letter back into the buffer, to be forwarded again (at most once to its "
                "conversation); 404 when there is no such dead letter, 422 when it cannot be retried",
                "parameters": [{**_ID, "description": "dead letter id, as listed"}],
                "responses": {
                    "202": _json(
                        {
                            "type": "object",
                            "required": ["id", "status", "entry"],
                            "properties": {
                                "id": {"type": "string"},
                                "status": {"enum": ["retried"]},
                                "entry": {"type": "string", "description": "its new entry in the buffer"},
                            },
                        },
                        "back in the buffer",
                    ),
                    **_ERRORS,
                },
            }
        },
        "/api/consent": {
            "get": {
                "summary": "Export every consent record of a scope",
                "parameters": [_SCOPE],
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"scope": {"type": "string"}, "records": _RECORDS}},
                        "the scope's records",
                    ),
                    **_ERRORS,
                },
            }
        },
        "/api/consent/import": {
            "post": {
                "summary": "Import consent (how: import), all records checked before any is written; "
                "a change older than the one recorded is kept out",
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "required": ["records"],
                            "properties": {
                                "records": {"type": "array", "maxItems": 10000, "items": _ref("ConsentChange")}
                            },
                        },
                        "the records",
                    ),
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "imported": {"type": "integer"},
                                "changed": {"type": "integer", "description": "how many opt-outs this changed"},
                            },
                        },
                        "imported",
                    ),
                    **_ERRORS,
                },
            }
        },
        "/api/consent/{customer}": {
            "get": {
                "summary": "A customer's consent in every scope (or in `scope`), with its history",
                "parameters": [_CUSTOMER, {**_SCOPE, "required": False}],
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"customer": {"type": "string"}, "records": _RECORDS}},
                        "the customer's records",
                    ),
                    **_ERRORS,
                },
            },
            "post": {
                "summary": "Record an opt-in or opt-out of the customer's (how: api, dashboard or unsubscribe_link)",
                "parameters": [_CUSTOMER],
                "requestBody": {"required": True, **_json(_ref("ConsentChange"), "the change")},
                "responses": {"200": _json(_ref("ConsentRecord"), "the record as it is now"), **_ERRORS},
            },
        },
        "/api/broadcasts/{id}": {
            "get": {
                "summary": "A broadcast's progress: counts of started, skipped, queued, invalid, failed",
                "parameters": [{**_ID, "description": "broadcast id"}],
                "responses": {"200": _json({"type": "object"}, "progress"), **_ERRORS},
            }
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "CHATFLOW_API_KEY"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "ConsentChange": {
                "type": "object",
                "required": ["scope", "state"],
                "properties": {
                    "customer": {"type": "string", "description": "E.164 (import only: the path names it otherwise)"},
                    "scope": {"type": "string", "description": "one of our numbers, or `brand:<name>`"},
                    "state": {"enum": ["out", "in"]},
                    "how": {"enum": ["api", "dashboard", "unsubscribe_link"], "default": "api"},
                    "at": {"type": "string", "format": "date-time", "description": "when (default: now)"},
                    "note": {"type": "string", "maxLength": 200, "description": "who or what made the change"},
                },
            },
            "ConsentRecord": {
                "type": "object",
                "properties": {
                    "customer": {"type": "string"},
                    "scope": {"type": "string"},
                    "state": {"enum": ["out", "in", "unknown"]},
                    "updated_at": {"type": "string"},
                    "history": {
                        "type": "array",
                        "description": "the newest 50 changes, oldest first",
                        "items": {
                            "type": "object",
                            "properties": {
                                "state": {"enum": ["out", "in"]},
                                "at": {"type": "string", "format": "date-time"},
                                "how": {"enum": ["keyword", "api", "dashboard", "import", "unsubscribe_link"]},
                                "number": {"type": "string"},
                                "word": {"type": "string"},
                                "note": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "Operator": {
                "type": "object",
                "required": ["operator"],
                "properties": {"operator": {"type": "string", "minLength": 1, "maxLength": 100}},
            },
            "OperatorReply": {
                "type": "object",
                "required": ["operator", "text"],
                "properties": {
                    "operator": {"type": "string", "minLength": 1, "maxLength": 100},
                    "text": {"type": "string", "minLength": 1, "maxLength": 4096},
                },
            },
            "JourneyRequest": {
                "type": "object",
                "required": ["flow", "to", "from"],
                "properties": {
                    "flow": {"type": "string"},
                    "to": {"type": "string", "description": "the customer, E.164"},
                    "from": {"type": "string", "description": "one of our numbers, E.164"},
                    "data": {"type": "object"},
                    "idempotency_key": {"type": "string"},
                    "when_busy": {
                        "enum": list(WHEN_BUSY),
                        "description": "when the customer is already in a conversation on that number: "
                        "this journey's own policy, over its flow's `when_busy`",
                    },
                },
            },
            "DigestEvent": {
                "type": "object",
                "required": ["flow", "to", "from", "event"],
                "properties": {
                    "flow": {"type": "string", "description": "a flow with a digest_window"},
                    "to": {"type": "string", "description": "the customer, E.164"},
                    "from": {"type": "string", "description": "one of our numbers, E.164"},
                    "event": {"type": "object"},
                },
            },
            "Started": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "status": {"enum": ["started", "queued", "skipped", "duplicate"]},
                    "flow": {"type": "string"},
                    "run_id": {"type": "string"},
                    "interrupted": {"type": "boolean"},
                },
            },
            "Listed": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "run_id": {"type": "string", "description": "this run of the conversation"},
                    "state": {"enum": STATES},
                    "outcome": {"enum": ["", *OUTCOMES], "description": '"" while running'},
                    "flow": {"type": "string"},
                    "started_at": {"type": "string", "format": "date-time"},
                    "closed_at": {"type": ["string", "null"], "format": "date-time"},
                },
            },
            "Conversation": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "run_id": {"type": "string", "description": "the latest run of the conversation"},
                    "state": {"enum": STATES},
                    "flow": {"type": "string"},
                    "version": {"type": "integer", "description": "the flow's version this conversation runs on"},
                    "step": {"type": "string"},
                    "outcome": {"enum": ["", *OUTCOMES], "description": '"" while running'},
                    "reason": {
                        "type": "string",
                        "description": 'why it ended with that outcome; "" while running and for completed',
                    },
                    "data": {"type": "object"},
                    "transcript": {"type": "array", "items": _ref("Turn")},
                },
            },
            "Turn": {
                "type": "object",
                "properties": {
                    "direction": {"enum": ["in", "out"]},
                    "text": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                    "message_id": {"type": "string"},
                    "status": {"type": "string", "description": "sending, sent, delivered, read, failed..."},
                    "error_code": {"type": "string"},
                    "options": {"type": "array", "items": {"type": "string"}},
                    "to": {
                        "type": "string",
                        "description": "a notification's recipient (a flow's Notify step); \"\" for the customer",
                    },
                    "channel": {"type": "string", "description": "a notification's channel (email, sms...)"},
                },
            },
            "DeadLetter": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "at": {"type": "string", "description": "when it was put aside"},
                    "reason": {"type": "string"},
                    "kind": {"enum": ["too_large", "unreadable", "refused"]},
                    "message_id": {"type": "string"},
                    "conversation": {"type": "string"},
                    "flow": {"type": "string"},
                    "size": {"type": "integer", "description": "bytes"},
                    "first_buffered": {"type": "string"},
                },
            },
            "Event": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "data": {"type": "object"}, "id": {"type": "string"}},
            },
            "EventByKey": {
                "type": "object",
                "required": ["name", "key"],
                "properties": {
                    "name": {"type": "string"},
                    "key": {"type": "object", "minProperties": 1, "maxProperties": 1},
                    "data": {"type": "object"},
                    "id": {"type": "string"},
                },
            },
            "BroadcastRequest": {
                "type": "object",
                "required": ["flow", "from", "to"],
                "properties": {
                    "flow": {"type": "string"},
                    "from": {"type": "string"},
                    "to": {
                        "type": "array",
                        "items": {
                            "oneOf": [
                                {"type": "string"},
                                {
                                    "type": "object",
                                    "properties": {"to": {"type": "string"}, "data": {"type": "object"}},
                                },
                            ]
                        },
                    },
                    "data": {"type": "object"},
                    "idempotency_key": {"type": "string"},
                },
            },
        },
    },
}
