"""SNS ``SubscriptionConfirmation`` through the real bridge: allow-listed hosts only, no redirects,
and never ``{"confirmed": true}`` unless the ``SubscribeURL`` really answered."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from producers.sns import SubscribeRefused, check_subscribe_url, host_matches, parse_patterns
from tests.helpers import free_port
from tests.unit.bridge_tools import StartBridge, SubscribeEndpoint, bridges, post

LOCAL = "127.0.0.1"


@pytest.fixture()
def start_bridge() -> Iterator[StartBridge]:
    with bridges() as start:
        yield start


def confirmation(url: str) -> bytes:
    return json.dumps(
        {
            "Type": "SubscriptionConfirmation",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:lookalike-images",
            "Token": "abc",
            "SubscribeURL": url,
        }
    ).encode()


def test_allow_listed_subscribe_url_is_fetched_and_confirmed(start_bridge: StartBridge) -> None:
    server, pub = start_bridge(bridge_subscribe_hosts=f"sns.*.amazonaws.com,{LOCAL}")
    with SubscribeEndpoint().running() as sns:
        assert post(server.url, confirmation(sns.url)) == (200, {"confirmed": True})
        assert sns.hits == ["/confirm?Token=abc"]
    assert pub.events == []


def test_unreachable_subscribe_url_is_502_never_confirmed(start_bridge: StartBridge) -> None:
    server, _ = start_bridge(bridge_subscribe_hosts=LOCAL)
    status, answer = post(server.url, confirmation(f"http://{LOCAL}:{free_port()}/confirm"), timeout=30)
    assert status == 502 and "confirmed" not in answer and "not confirmed" in answer["error"]


def test_subscribe_url_answering_an_error_is_502(start_bridge: StartBridge) -> None:
    server, _ = start_bridge(bridge_subscribe_hosts=LOCAL)
    with SubscribeEndpoint(status=500).running() as sns:
        status, answer = post(server.url, confirmation(sns.url))
        assert sns.hits, "the SubscribeURL was never asked"
    assert status == 502 and "500" in answer["error"]


def test_disallowed_host_is_refused_and_not_fetched(start_bridge: StartBridge) -> None:
    server, _ = start_bridge()  # the default: SNS's own hosts only
    with SubscribeEndpoint().running() as sns:
        status, answer = post(server.url, confirmation(sns.url))
        assert status == 400 and "not allow-listed" in answer["error"]
        assert sns.hits == []


def test_a_redirect_away_from_the_allowed_host_is_not_followed(start_bridge: StartBridge) -> None:
    server, _ = start_bridge(bridge_subscribe_hosts=LOCAL)
    with SubscribeEndpoint().running() as target:
        elsewhere = target.url.replace(LOCAL, "localhost")  # another host, same listener
        with SubscribeEndpoint(status=302, location=elsewhere).running() as sns:
            status, _ = post(server.url, confirmation(sns.url))
            assert sns.hits and target.hits == []
    assert status == 502


def test_missing_or_non_http_subscribe_url_is_400(start_bridge: StartBridge) -> None:
    server, _ = start_bridge(bridge_subscribe_hosts=LOCAL)
    for url in ("", "file:///etc/passwd", f"ftp://{LOCAL}/x", "http://[::1"):
        assert post(server.url, confirmation(url))[0] == 400, url


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("sns.us-east-1.amazonaws.com", True),
        ("SNS.eu-west-3.AmazonAWS.com", True),
        ("sns.cn-north-1.amazonaws.com.cn", True),
        ("sns.evil.example.amazonaws.com", False),  # '*' is one label, not any text
        ("sns.us-east-1.amazonaws.com.evil.org", False),
        ("evil.org", False),
        ("127.0.0.1", False),
    ],
)
def test_default_patterns_match_sns_hosts_only(host: str, allowed: bool) -> None:
    patterns = parse_patterns("sns.*.amazonaws.com, sns.*.amazonaws.com.cn")
    assert any(host_matches(host, p) for p in patterns) is allowed


def test_userinfo_cannot_smuggle_an_allowed_host() -> None:
    patterns = ["sns.*.amazonaws.com"]
    assert check_subscribe_url("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", patterns)
    with pytest.raises(SubscribeRefused):
        check_subscribe_url("https://sns.us-east-1.amazonaws.com@evil.org/", patterns)
