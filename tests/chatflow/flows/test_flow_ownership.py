"""Each flow class owns its steps, and no flow may branch on a word the edge answers itself."""

import pytest

from chatflow import Ask, Choice, End, Flow, FlowDefinitionError, Say, keyword
from chatflow.domain.errors import ConfigError
from chatflow.runtime.config import parse_config
from conversations.demo import Demo


class Base(Flow):
    greet = Say("Hello.")
    thanks = Say("Thanks for writing.")


class Extended(Base):
    offer = Say("Here is 10% off.")
    done = End("completed")


def test_a_step_added_after_inherited_ones_is_reached() -> None:
    assert Extended.next_step("thanks", "next") == "offer"


def test_a_subclass_leaves_its_base_flow_as_it_was() -> None:
    assert Base.next_step("thanks", "next") == "completed"
    assert Base.steps["thanks"] is not Extended.steps["thanks"]


@pytest.mark.parametrize("word", ["quit", "STOP", "Cancel!", "help", "start"])
def test_a_branch_on_a_reserved_word_is_refused_when_the_flow_is_defined(word: str) -> None:
    with pytest.raises(FlowDefinitionError, match="answers itself"):

        class Leaving(Flow):
            ask = Ask("Stay or go?", branches={keyword("stay"): "stay", keyword(word): "go"})
            stay = End("completed")
            go = End("cancelled")


def test_a_choice_titled_with_a_reserved_word_is_refused() -> None:
    with pytest.raises(FlowDefinitionError, match="'Cancel'"):

        class Order(Flow):
            ask = Ask("Your order?", choices=[Choice("Confirm", "ok"), Choice("Cancel", "ok")])
            ok = End("completed")


def test_a_number_keyword_that_is_a_reserved_word_is_refused() -> None:
    toml = '[[numbers]]\nnumber = "+15005550006"\nprovider = "console"\nflow = "demo"\nkeywords = { STOP = "demo" }\n'
    with pytest.raises(ConfigError, match="'STOP'"):
        parse_config(toml)


def test_the_demo_ends_on_bye_and_leaves_quit_to_the_opt_out() -> None:
    menu = Demo.steps["menu"]
    assert isinstance(menu, Ask)
    words = {word for matcher in menu.branches for word in getattr(matcher, "words", ())}
    assert "bye" in words and "quit" not in words
