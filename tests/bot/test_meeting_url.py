"""Meeting URLs: what is accepted, and what the errors say."""

from __future__ import annotations

import pytest

from bot.meetings.url import JanusMeetingUrl, parse_meeting_url


def test_full_url_is_parsed() -> None:
    url = parse_meeting_url(
        "janus+ws://127.0.0.2:8188/?room=1234&textroom=99&pin=s%C3%A9same&apisecret=k&token=t"
    )
    assert url == JanusMeetingUrl(
        transport="ws",
        host="127.0.0.2",
        port=8188,
        path="/",
        room=1234,
        text_room=99,
        pin="sésame",
        text_pin=None,
        api_secret="k",
        token="t",
    )
    assert url.websocket_url == "ws://127.0.0.2:8188/"
    assert "sésame" not in url.redacted() and "apisecret" not in url.redacted()


def test_defaults_port_path_and_text_room() -> None:
    url = parse_meeting_url("janus+wss://janus.example.org/?room=7")
    assert (url.transport, url.port, url.path, url.text_room) == ("wss", 8989, "/", 7)
    assert parse_meeting_url("JANUS+WS://h/janus?room=7").websocket_url == "ws://h:8188/janus"
    assert parse_meeting_url("janus+ws://[::1]:9000/?room=7").websocket_url == "ws://[::1]:9000/"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Expected a meeting URL"),
        ("https://h/?room=1", "janus\\+ws:// or janus\\+wss://"),
        ("janus+http://h/?room=1", "janus\\+ws:// or janus\\+wss://"),
        ("janus+ws:///?room=1", "Expected a host"),
        ("janus+ws://h:99999/?room=1", "port"),
        ("janus+ws://h:abc/?room=1", "port"),
        ("janus+ws://h/", "Expected room=ID"),
        ("janus+ws://h/?room=abc", "positive whole number"),
        ("janus+ws://h/?room=0", "positive whole number"),
        ("janus+ws://h/?room=-5", "positive whole number"),
        ("janus+ws://h/?room=١٢", "positive whole number"),
        ("janus+ws://h/?room=1&textroom=x", "textroom= to be a positive"),
        ("janus+ws://h/?room=1&pni=2", "Received unknown: pni"),
        ("janus+ws://h/?room=1&secret=2", "Received unknown: secret"),
        ("janus+ws://h/?room=1&room=2", "Received repeated: room"),
        ("janus+ws://user:pw@h/?room=1", "no user:password@"),
        ("janus+ws://h/?room=1#x", "no #fragment"),
    ],
)
def test_bad_urls_say_what_was_expected_and_received(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        parse_meeting_url(text)
    assert "Received" in str(error.value)


def test_non_string_input_is_refused() -> None:
    with pytest.raises(ValueError, match="Received: None"):
        parse_meeting_url(None)  # type: ignore[arg-type]
