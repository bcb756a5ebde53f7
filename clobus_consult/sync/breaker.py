"""A per-process circuit breaker per upstream: after repeated transient failures, inline attempts are skipped
for a cool-off period so intake stays fast during an outage. Background attempts still run: they are the
probes that close it again."""
import threading
import time


class Breaker:
    def __init__(self, threshold: int = 3, cooloff: float = 30.0):
        self.threshold, self.cooloff = threshold, cooloff
        self.failures = 0
        self.opened_at: float | None = None
        self.lock = threading.Lock()

    @property
    def state(self) -> str:
        with self.lock:
            if self.opened_at is None:
                return "closed"
            return "open" if time.monotonic() - self.opened_at < self.cooloff else "half-open"

    def allows_inline(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        with self.lock:
            self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        with self.lock:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = time.monotonic()
