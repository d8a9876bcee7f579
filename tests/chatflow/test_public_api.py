"""The public API is pinned: what flows and their tests import from `chatflow` and `chatflow.testing`.

A change here is a change every user's code sees; make it on purpose, with a note in the README.
"""

import chatflow
import chatflow.testing

AUTHORING_API = [
    "Ask", "AskLanguage", "Button", "Choice", "Convo", "Delay", "End", "Flow", "FlowDefinitionError", "Handover", "Http", "If", "Location", "MediaUnavailable", "Say",
    "SendWindow", "Notify", "Report", "SourceEvent", "SourceMapping", "Split", "Start", "Wait", "WaitUntil", "anything", "days", "hours", "keyword", "location", "media", "minutes", "no",
    "normalise", "number", "reaction", "regex", "seconds", "secret", "submitted", "Template", "yes",
]  # fmt: skip
TESTING_API = ["FlowTest", "MemoryFlowTest", "dev_server", "time_skipping"]


def test_the_authoring_api_is_what_the_readme_documents() -> None:
    assert sorted(chatflow.__all__) == sorted(AUTHORING_API)
    for name in AUTHORING_API:
        assert getattr(chatflow, name) is not None


def test_the_testing_api_is_pinned() -> None:
    assert sorted(chatflow.testing.__all__) == sorted(TESTING_API)
    for name in TESTING_API:
        assert getattr(chatflow.testing, name) is not None
