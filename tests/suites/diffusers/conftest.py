"""Shared fixtures of the diffusers-suite tests (the tiny models are in tests/conftest.py)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class ScriptedServer:
    """An OpenAI-compatible /v1/chat/completions server on 127.0.0.1 answering from a script.

    Each entry of ``script`` is ``(status, content)`` or ``(status, content, headers)``;
    the last entry repeats once the script is used up. Requests are recorded in ``requests``.
    """

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                entry = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                status, content, headers = (*entry, {})[:3] if len(entry) == 2 else entry
                if status == 200:
                    payload = json.dumps(
                        {"choices": [{"message": {"role": "assistant", "content": content}}]}
                    )
                else:
                    payload = json.dumps({"error": content})
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def http_server():
    pytest.importorskip("httpx")
    servers = []

    def start(script):
        s = ScriptedServer(script)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()
