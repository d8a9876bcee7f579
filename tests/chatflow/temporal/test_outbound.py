"""The guard of `Http` calls: which addresses are the worker's own network, and what allows one."""

import pytest

from chatflow.temporal.outbound import AllowedHost, refusal


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "fe80::1",
        "fd00:ec2::254", "100.100.100.200", "0.0.0.0", "::", "224.0.0.1", "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe", "2002:7f00:1::",
    ],
)  # fmt: skip
def test_addresses_inside_the_network_are_refused(address: str) -> None:
    assert refusal(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_are_not(address: str) -> None:
    assert refusal(address) is None


def test_an_allowed_host_names_a_port_or_any() -> None:
    assert AllowedHost.parse("127.0.0.1:8080").allows("127.0.0.1", 8080)
    assert not AllowedHost.parse("127.0.0.1:8080").allows("127.0.0.1", 8081)
    assert AllowedHost.parse("Shop.Internal").allows("shop.internal", 443)
    assert AllowedHost.parse("[::1]:9").allows("::1", 9)
    with pytest.raises(ValueError):
        AllowedHost.parse("http://x/y")
