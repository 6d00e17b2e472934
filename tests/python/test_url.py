"""Unit tests: broker URLs."""

import pytest

from mqlock.url import parse_broker_url


def test_schemes_and_defaults():
    u = parse_broker_url("mqtt://127.0.0.1")
    assert (u.transport, u.tls, u.host, u.port) == ("tcp", False, "127.0.0.1", 1883)
    assert parse_broker_url("mqtts://h").port == 8883
    assert parse_broker_url("ssl://h:9").tls
    w = parse_broker_url("wss://example.org/mqtt?x=1")
    assert (w.transport, w.tls, w.port, w.path) == ("websockets", True, 443, "/mqtt?x=1")


@pytest.mark.parametrize("bad", ["http://h", "h:1883", "mqtt://", "mqtt://h:99999",
                                 "mqtt://u:p@h", 5])
def test_bad_urls(bad):
    with pytest.raises(ValueError):
        parse_broker_url(bad)
