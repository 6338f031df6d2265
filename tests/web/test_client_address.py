"""Who is asking: X-Forwarded-For is believed only from a proxy the operator trusts."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request

from bots.web.client import TrustedProxies, source_of
from cercle.settings import Settings, SettingsError


def request(peer: str | None, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/j/x",
        "headers": headers,
        "client": (peer, 50000) if peer is not None else None,
    }
    return Request(scope)


LOCAL = TrustedProxies.local()


def test_a_direct_client_is_its_own_address_whatever_header_it_sends() -> None:
    assert LOCAL.client(request("198.51.100.7", "203.0.113.1")) == "198.51.100.7"


def test_a_proxy_on_the_same_machine_names_the_client() -> None:
    assert LOCAL.client(request("127.0.0.1", "198.51.100.7")) == "198.51.100.7"
    assert LOCAL.client(request("::1", "2001:db8::5")) == "2001:db8::5"


def test_what_the_client_wrote_before_the_proxys_entry_is_ignored() -> None:
    forged = request("127.0.0.1", "203.0.113.1, 203.0.113.2, 198.51.100.7")

    assert LOCAL.client(forged) == "198.51.100.7"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    proxies = TrustedProxies.parse(["127.0.0.1", "10.0.0.0/8"])

    chained = request("127.0.0.1", "203.0.113.1, 198.51.100.7, 10.1.2.3")

    assert proxies.client(chained) == "198.51.100.7"


def test_a_proxy_without_a_header_or_with_a_broken_one_is_the_client() -> None:
    assert LOCAL.client(request("127.0.0.1")) == "127.0.0.1"
    assert LOCAL.client(request("127.0.0.1", "not-an-address")) == "127.0.0.1"
    assert LOCAL.client(request("127.0.0.1", "198.51.100.7, ")) == "127.0.0.1"


def test_trusting_no_proxy_ignores_the_header_even_from_this_machine() -> None:
    assert TrustedProxies.parse([]).client(request("127.0.0.1", "198.51.100.7")) == "127.0.0.1"


def test_limits_count_an_ipv6_client_by_its_64_and_an_ipv4_by_its_address() -> None:
    assert source_of("2001:db8:1:2:aaaa::1") == source_of("2001:db8:1:2:bbbb::9")
    assert source_of("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("::ffff:198.51.100.7") == "198.51.100.7"
    assert source_of("198.51.100.7") == "198.51.100.7" != source_of("198.51.100.8")
    assert LOCAL.source(request(None)) is None


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(environ=env, dotenv_path=tmp_path / "none.env")


def test_the_setting_defaults_to_this_machine_and_names_a_bad_entry(tmp_path: Path) -> None:
    assert settings(tmp_path).trusted_proxies == ("127.0.0.1", "::1")
    assert settings(tmp_path, CERCLE_TRUSTED_PROXIES="none").trusted_proxies == ()
    both = settings(tmp_path, CERCLE_TRUSTED_PROXIES="10.0.0.0/8, 2001:db8::1")
    assert both.trusted_proxies == ("10.0.0.0/8", "2001:db8::1")
    with pytest.raises(SettingsError, match=r"CERCLE_TRUSTED_PROXIES: entry 2 is not"):
        settings(tmp_path, CERCLE_TRUSTED_PROXIES="10.0.0.1, proxy.example.org")
