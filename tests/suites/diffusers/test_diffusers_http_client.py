"""The OpenAI-compatible client against reasoning-model servers: no temperature by default,
refused parameters dropped or renamed, Retry-After honoured, max_tokens sent."""

from __future__ import annotations

import json

import pytest

from poser_env.error import ConfigError

pytest.importorskip("httpx")

from poser_env.suites.diffusers import openai_client  # noqa: E402
from poser_env.suites.diffusers.openai_client import (  # noqa: E402
    ChatClient,
    HTTPComponentError,
    retry_after_seconds,
)

OK = (200, json.dumps({"ok": True}))
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def sleeps(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr(openai_client.time, "sleep", waited.append)
    return waited


def test_defaults_send_max_tokens_and_no_temperature(http_server, sleeps):
    server = http_server([OK])
    client = ChatClient(server.base_url, "o3", api_key="k")
    assert client.complete(MSG, json.loads) == {"ok": True}
    body = server.requests[0]["body"]
    assert "temperature" not in body and body["max_tokens"] == 2048
    assert body["response_format"] == {"type": "json_object"}


def test_refused_temperature_is_dropped_and_remembered(http_server, sleeps):
    refusal = (
        400,
        {
            "message": "Unsupported value: 'temperature' does not support 0 with this model. "
            "Only the default (1) value is supported.",
            "param": "temperature",
        },
    )
    server = http_server([refusal, OK])
    client = ChatClient(server.base_url, "o3", temperature=0.0, max_retries=0)
    assert client.complete(MSG, json.loads) == {"ok": True}  # no retry was needed for it
    assert server.requests[0]["body"]["temperature"] == 0.0
    assert "temperature" not in server.requests[1]["body"]
    assert client.dropped == {"temperature"} and sleeps == []
    client.complete(MSG, json.loads)
    assert "temperature" not in server.requests[2]["body"]


def test_max_tokens_renamed_when_the_server_wants_max_completion_tokens(http_server, sleeps):
    refusal = (
        400,
        {
            "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        },
    )
    server = http_server([refusal, OK])
    client = ChatClient(server.base_url, "o3", max_tokens=300, max_retries=0)
    client.complete(MSG, json.loads)
    second = server.requests[1]["body"]
    assert second["max_completion_tokens"] == 300 and "max_tokens" not in second


def test_other_bad_requests_are_not_retried(http_server, sleeps):
    server = http_server([(400, {"message": "Invalid model name"})])
    with pytest.raises(HTTPComponentError, match="attempt 1: HTTP 400"):
        ChatClient(server.base_url, "nope", max_retries=3).complete(MSG, json.loads)
    assert len(server.requests) == 1


def test_retry_after_is_honoured(http_server, sleeps):
    server = http_server(
        [(429, "slow down", {"Retry-After": "7"}), (503, "busy", {"Retry-After": "0"}), OK]
    )
    client = ChatClient(server.base_url, "m", backoff=0.5, max_retries=3)
    assert client.complete(MSG, json.loads) == {"ok": True}
    assert sleeps == [7.0, 1.0]  # the server's wait when longer than the backoff, else the backoff


def test_a_retry_after_longer_than_allowed_fails_at_once(http_server, sleeps):
    server = http_server([(429, "quota", {"Retry-After": "3600"})])
    with pytest.raises(
        HTTPComponentError, match="retry after 3600 s, more than max_retry_after=60 s"
    ):
        ChatClient(server.base_url, "m", max_retry_after=60, max_retries=5).complete(
            MSG, json.loads
        )
    assert len(server.requests) == 1 and sleeps == []


def test_retry_after_header_forms():
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert (
        retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    )  # a date in the past: no wait
    with pytest.raises(ConfigError, match="max_tokens must be None or an integer >= 1, got 0"):
        ChatClient("http://localhost:1/v1", "m", max_tokens=0)
