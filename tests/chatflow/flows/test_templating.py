import pytest

from chatflow.domain.errors import TemplateError
from chatflow.flows.templating import render, render_json, render_url


def test_dotted_paths_into_nested_data() -> None:
    data = {"customer": {"name": "Ana", "orders": [{"id": "A-1"}]}, "total": 12.5}
    assert render("Hi {customer.name}, order {customer.orders.0.id}: {total:.2f}", data) == ("Hi Ana, order A-1: 12.50")


def test_a_missing_key_is_named() -> None:
    with pytest.raises(TemplateError, match="'order_id'"):
        render("Order {order_id}", {})


def test_callables_and_json_bodies() -> None:
    assert render(lambda d: d["a"] * 2, {"a": "x"}) == "xx"
    assert render_json({"id": "{id}", "items": ["{id}", 3]}, {"id": "A"}) == {"id": "A", "items": ["A", 3]}


API = {"api": "https://shop.example.com/api"}


def test_url_values_from_the_data_are_encoded_one_value_each() -> None:
    data = {**API, "order": "../../admin?x=1#", "q": "a&b=c d"}
    url = render_url("{api}/orders/{order}?q={q}", data, API)
    assert url == "https://shop.example.com/api/orders/..%2F..%2Fadmin%3Fx%3D1%23?q=a%26b%3Dc%20d"


def test_the_urls_host_comes_from_the_flows_defaults_never_from_the_data() -> None:
    data = {"api": "http://169.254.169.254/latest/meta-data", "order": "A-1"}
    assert render_url("{api}/orders/{order}", data, API) == "https://shop.example.com/api/orders/A-1"
    with pytest.raises(TemplateError, match="gives the URL's scheme or host"):
        render_url("https://{tenant}.example.com/orders", {"tenant": "evil.com#"}, {})
    # A callable URL gets the flow's URL defaults back, whatever the data says.
    assert render_url(lambda d: f"{d['api']}/x", data, API) == "https://shop.example.com/api/x"


def test_an_empty_path_value_and_a_relative_url_are_errors() -> None:
    with pytest.raises(TemplateError, match="'order', which is empty"):
        render_url("{api}/orders/{order}", {"order": ""}, API)
    with pytest.raises(TemplateError, match="absolute http"):
        render_url("/orders/1", {}, {})
