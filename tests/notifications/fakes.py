"""A local fake Telegram Bot API server and a webhook receiver: real HTTP on loopback, recording what they get."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    token: str
    payload: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Base:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.server = _Server(("127.0.0.1", 0), self._handler())
        # A short poll interval: shutdown() waits for the next poll, and every test stops its fakes.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def start(self) -> _Base:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401
                return

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer, extra = outer.answer(self.path, body, dict(self.headers.items()))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError


class FakeTelegram(_Base):
    """``POST /bot<token>/<method>``: records ``sendMessage``; serves ``getUpdates`` from ``feed``; ``fail_next``
    makes the next calls of a method answer an error (429 with ``retry_after``, or 500)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 1000
        self.failures: dict[str, list[tuple[int, float | None]]] = {}
        self.delay: float = 0.0

    def feed(self, update: dict[str, Any]) -> None:
        with self.lock:
            update = {"update_id": self.next_update_id, **update}
            self.next_update_id += 1
            self.updates.append(update)

    def feed_text(self, chat_id: int, text: str) -> None:
        self.feed({"message": {"message_id": 1, "chat": {"id": chat_id, "type": "private"}, "text": text}})

    def feed_button(self, chat_id: int, data: str) -> None:
        self.feed({"callback_query": {"id": "cb1", "data": data, "message": {"chat": {"id": chat_id}}}})

    def fail_next(self, method: str, status: int, retry_after: float | None = None, count: int = 1) -> None:
        with self.lock:
            self.failures.setdefault(method, []).extend([(status, retry_after)] * count)

    def sent(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                r.payload
                for r in self.requests
                if r.method == "sendMessage" and (chat_id is None or str(r.payload.get("chat_id")) == str(chat_id))
            ]

    def sent_records(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == "sendMessage"]

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        parts = path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}, {}
        token, method = parts[0][3:], parts[1]
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, {}
        payload = json.loads(body or b"{}")
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            pending = self.failures.get(method)
            if pending:
                status, retry_after = pending.pop(0)
                answer: dict[str, Any] = {"ok": False, "error_code": status, "description": "Injected failure"}
                if retry_after is not None:
                    answer["parameters"] = {"retry_after": retry_after}
                    answer["description"] = f"Too Many Requests: retry after {retry_after}"
                return status, answer, {}
            self.requests.append(Recorded(method, token, payload, headers, body))
            if method == "getUpdates":
                offset = int(payload.get("offset") or 0)
                return 200, {"ok": True, "result": [u for u in self.updates if u["update_id"] >= offset]}, {}
            if method == "sendMessage":
                return (
                    200,
                    {"ok": True, "result": {"message_id": len(self.requests), "chat": {"id": payload.get("chat_id")}}},
                    {},
                )
            return 200, {"ok": True, "result": True}, {}


class WebhookReceiver(_Base):
    """Records every POST (``Recorded.token`` holds the request path); ``statuses`` queues the status codes of the
    next answers (default 200)."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            self.requests.append(Recorded("POST", path, json.loads(body or b"{}"), headers, body))
            status = self.statuses.pop(0) if self.statuses else 200
        return status, {"ok": status == 200}, {}
