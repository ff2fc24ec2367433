"""A small OpenAI-compatible chat server on 127.0.0.1 for tests (stdlib only).

``FakeOpenAI(script)`` answers each POST /v1/chat/completions with the next
entry of ``script`` (the last one repeats): a reply text, or a (status, raw body)
pair for errors, malformed and truncated bodies, or (status, raw body, headers).
A 429 without headers says ``Retry-After: 0.01`` (the SDK honours it; tests stay
fast). Every request is kept, with its arrival time in ``times``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

Reply = Union[str, tuple[int, str], tuple[int, str, dict], Callable[[dict], Any]]


def completion(text: str | None, *, finish_reason: str = "stop", prompt_tokens: int = 11,
               completion_tokens: int = 7, model: str = "fake-model", usage: bool = True) -> str:
    body: dict[str, Any] = {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": text}}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + completion_tokens}
    return json.dumps(body)


class FakeOpenAI:
    def __init__(self, script: list[Reply]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []  # time.monotonic() at each request
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with lock:
                    outer.requests.append(body)
                    outer.headers.append(dict(self.headers))
                    outer.times.append(time.monotonic())
                    i = min(len(outer.requests), len(outer.script)) - 1
                    reply = outer.script[i]
                if callable(reply):
                    reply = reply(body)
                status, raw, *extra = (200, completion(reply)) if isinstance(reply, str) else reply
                headers = extra[0] if extra else ({"Retry-After": "0.01"} if status == 429 else {})
                data = raw.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
