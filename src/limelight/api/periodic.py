"""Background work repeated every few seconds while the server runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Call ``task`` every ``interval`` seconds in a daemon thread until :meth:`stop`.

    A failing call is logged and the next one runs on schedule: background upkeep must never
    take the server down. ``start`` and ``stop`` may be called again (a stopped task restarts).

    Example
    -------
    >>> beat = Periodic("heartbeat", 1.0, lambda: None)
    >>> beat.start(); beat.stop()
    """

    def __init__(self, name: str, interval: float, task: Callable[[], object]) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.name, self.interval, self.task = name, interval, task
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.task()
            except Exception:
                log.exception("%s failed", self.name)
