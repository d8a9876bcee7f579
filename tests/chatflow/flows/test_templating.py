import pytest

from chatflow.flows.templating import TemplateError, render, render_json


def test_dotted_paths_into_nested_data():
    data = {"customer": {"name": "Ana", "orders": [{"id": "A-1"}]}, "total": 12.5}
    assert render("Hi {customer.name}, order {customer.orders.0.id}: {total:.2f}", data) == (
        "Hi Ana, order A-1: 12.50"
    )


def test_a_missing_key_is_named():
    with pytest.raises(TemplateError, match="'order_id'"):
        render("Order {order_id}", {})


def test_callables_and_json_bodies():
    assert render(lambda d: d["a"] * 2, {"a": "x"}) == "xx"
    assert render_json({"id": "{id}", "items": ["{id}", 3]}, {"id": "A"}) == {"id": "A", "items": ["A", 3]}
