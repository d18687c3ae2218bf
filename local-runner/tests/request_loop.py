"""Users' traffic on an endpoint while a run changes it: every outcome recorded, for a zero-failed-requests check."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request


class RequestLoop:
    """Scores one validation row through the endpoint's URL without pause, recording each outcome."""

    def __init__(self, url: str, body: bytes):
        self.url, self.body = url, body
        self.outcomes: list[int | str] = []
        self.started_at: list[float] = []  # time.monotonic() as each request of ``outcomes`` was sent
        self.bodies: list[bytes] = []  # each answer's body (empty for a failed request)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            request = urllib.request.Request(
                f"{self.url}/invocations", data=self.body, headers={"Content-Type": "text/csv"}
            )
            self.started_at.append(time.monotonic())
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.bodies.append(response.read())
                    self.outcomes.append(response.status)
            except (urllib.error.URLError, OSError) as error:
                self.bodies.append(b"")
                self.outcomes.append(repr(error))
            time.sleep(0.01)

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
