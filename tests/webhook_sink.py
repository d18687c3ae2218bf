"""A webhook on loopback that records what is posted to it, as Slack's incoming webhook receives it: the Slack
notifier's unit test and the local runner's delivery test post to it."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookSink:
    """``with WebhookSink() as sink``: ``sink.url`` accepts posts (answering ``status``), ``sink.posts`` holds
    each decoded JSON body."""

    def __init__(self, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.status = status
        self.posts: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.posts.append(json.loads(body))
                self.send_response(sink.status)
                self.end_headers()
                self.wfile.write(b"ok" if sink.status == HTTPStatus.OK else b"no_service")

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the test asserts the posts
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/services/T000/B000/XXXX"

    def __enter__(self) -> WebhookSink:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
