"""A minimal OpenAI-compatible chat client with a timeout, bounded retries and JSON validation.

Works against a hosted API (the paper's critic and extractor were a hosted model) or a
local server that speaks the same protocol (vLLM, llama.cpp, Ollama). Only
``POST {base_url}/chat/completions`` is used.

Failures are never silently turned into scores: transport errors, HTTP 429/5xx and answers
that do not validate against the expected schema are retried up to ``max_retries`` times
with exponential backoff (or the server's ``Retry-After``), then raised as
:class:`HTTPComponentError` with every attempt's reason.

Reasoning models (OpenAI's o-series, some hosted open models) reject parameters that
chat models take: ``temperature`` other than the default, ``max_tokens`` (they want
``max_completion_tokens``), sometimes ``response_format``. A 400 answer that names one of
these is not a failure of the model: the client drops or renames that parameter, remembers
it for later calls, and sends the request again at once.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import numpy as np

from poser_env._imports import require
from poser_env.error import ConfigError, PoserError

T = TypeVar("T")


class HTTPComponentError(PoserError, RuntimeError):
    """An OpenAI-compatible server gave no valid answer after every retry."""

    def __init__(self, url: str, attempts: list[str]):
        self.url = url
        self.attempts = attempts
        lines = "; ".join(f"attempt {i + 1}: {a}" for i, a in enumerate(attempts))
        super().__init__(f"No valid answer from {url} after {len(attempts)} attempt(s): {lines}")


def image_data_url(image: np.ndarray) -> str:
    """``(H, W, 3)`` uint8 image as a ``data:image/png;base64,...`` URL."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay in seconds or an HTTP date), or ``None``."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def extract_json(text: str) -> Any:
    """The JSON object in a model answer (bare, or inside a ```json fence)."""
    fence = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.S)
    if fence:
        text = fence.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError(f"no JSON object in the answer {text[:120]!r}")
    return json.loads(text[start : end + 1])


class ChatClient:
    """Chat completions against an OpenAI-compatible server.

    Args:
        base_url: e.g. ``"https://api.openai.com/v1"`` or ``"http://localhost:8000/v1"``.
        model: Model name sent in the request.
        api_key: Bearer token; ``None`` reads the environment variable ``api_key_env``.
        api_key_env: Variable holding the key (default ``OPENAI_API_KEY``); may be unset for local servers.
        timeout: Seconds per request.
        max_retries: Further attempts after the first one fails.
        backoff: First wait in seconds; doubles each retry (0 disables waiting, for tests).
        json_mode: Ask for ``response_format={"type": "json_object"}`` (dropped
            automatically if the server says it does not support it).
        temperature: Sampling temperature; ``None`` (default) sends none, so the server's
            default applies (reasoning models accept only that). Set 0 for reproducible
            answers from a server that allows it; dropped if the server rejects it.
        max_tokens: Longest answer, sent as ``max_tokens`` (renamed to
            ``max_completion_tokens`` if the server asks for that). Bounds the cost and the
            time of a runaway answer.
        max_retry_after: Longest ``Retry-After`` (seconds) the client honours; a server that
            asks for a longer wait fails the call at once with that reason.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        json_mode: bool = True,
        temperature: float | None = None,
        max_tokens: int | None = 2048,
        max_retry_after: float = 120.0,
    ):
        httpx = require("httpx", "models", "The OpenAI-compatible HTTP client")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {base_url!r}.")
        if timeout <= 0 or max_retries < 0 or backoff < 0 or max_retry_after < 0:
            raise ConfigError(
                "Expected timeout > 0, max_retries >= 0, backoff >= 0, max_retry_after >= 0; got "
                f"{timeout}, {max_retries}, {backoff}, {max_retry_after}."
            )
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise ConfigError(f"max_tokens must be None or an integer >= 1, got {max_tokens!r}.")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.json_mode = json_mode
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_retry_after = float(max_retry_after)
        self.max_tokens_key = "max_tokens"
        self.dropped: set[str] = set()  # parameters the server refused (see _adapt)
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._timeout = float(timeout)
        self._client = httpx.Client(timeout=self._timeout, headers=self._headers)

    def complete(self, messages: list[dict[str, Any]], parse: Callable[[str], T]) -> T:
        """Send ``messages``; return ``parse(answer_text)``, retrying on any failure.

        ``parse`` raises (``ValueError``, pydantic's ``ValidationError``...) on an invalid
        answer; the reason is appended to the conversation so the model can correct itself.
        """
        import httpx

        attempts: list[str] = []
        convo = list(messages)
        wait: float | None = None
        attempt = 0
        while attempt <= self.max_retries:
            if attempt and wait is not None:
                time.sleep(wait)
            wait = self.backoff * 2**attempt
            attempt += 1
            body = self._body(convo)
            try:
                resp = self._client.post(self.url, json=body)
            except httpx.HTTPError as e:
                attempts.append(f"{type(e).__name__}: {e}")
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                attempts.append(f"HTTP {resp.status_code}: {resp.text[:200]}")
                asked = retry_after_seconds(resp.headers.get("Retry-After"))
                if asked is not None:
                    if asked > self.max_retry_after:
                        attempts.append(
                            f"the server asks to retry after {asked:g} s, "
                            f"more than max_retry_after={self.max_retry_after:g} s"
                        )
                        break
                    wait = max(wait, asked)
                continue
            if resp.status_code == 400 and self._adapt(resp.text):
                # Not the model's failure: the same request without the refused parameter,
                # at once and without using up a retry.
                attempts.append(f"HTTP 400, adapted the request: {resp.text[:160]}")
                attempt -= 1
                wait = None
                continue
            if resp.status_code >= 400:
                # Bad request, auth, unknown model: retrying cannot help.
                attempts.append(f"HTTP {resp.status_code}: {resp.text[:200]}")
                break
            try:
                text = resp.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError) as e:
                attempts.append(f"malformed response body ({type(e).__name__}: {e})")
                continue
            try:
                return parse(text or "")
            except Exception as e:  # noqa: BLE001 - any parse failure is retried
                reason = f"invalid answer ({type(e).__name__}: {str(e)[:300]})"
                attempts.append(reason)
                convo = [
                    *messages,
                    {"role": "assistant", "content": text or ""},
                    {
                        "role": "user",
                        "content": f"That answer was not valid: {reason}. Reply again with only the JSON.",
                    },
                ]
        raise HTTPComponentError(self.url, attempts)

    def _body(self, convo: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": convo}
        if self.temperature is not None and "temperature" not in self.dropped:
            body["temperature"] = self.temperature
        if self.max_tokens is not None and "max_tokens" not in self.dropped:
            body[self.max_tokens_key] = self.max_tokens
        if self.json_mode and "response_format" not in self.dropped:
            body["response_format"] = {"type": "json_object"}
        return body

    def _adapt(self, error_text: str) -> bool:
        """Drop or rename the parameter a 400 answer refuses; ``False`` if it names none we can change."""
        low = error_text.lower()
        if (
            "max_completion_tokens" in low
            and self.max_tokens_key == "max_tokens"
            and self.max_tokens is not None
        ):
            self.max_tokens_key = "max_completion_tokens"
            return True
        refused = (
            "unsupported",
            "not supported",
            "does not support",
            "only the default",
            "not allowed",
            "unrecognized",
        )
        if not any(word in low for word in refused):
            return False
        for param, sent in (
            ("temperature", self.temperature is not None),
            ("response_format", self.json_mode),
            ("max_tokens", self.max_tokens is not None),
        ):
            if sent and param not in self.dropped and param in low:
                self.dropped.add(param)
                return True
        return False

    def close(self) -> None:
        self._client.close()

    def __getstate__(self) -> dict[str, Any]:
        # The connection pool stays behind; a copy opens its own.
        state = self.__dict__.copy()
        del state["_client"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import httpx

        self.__dict__.update(state)
        self._client = httpx.Client(timeout=self._timeout, headers=self._headers)
