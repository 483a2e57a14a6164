"""The optional Prometheus endpoint (`[metrics] enabled = true`).

Counters are updated by the daemon's main thread as it settles outcomes; gauges are read at
scrape time from callables, so a scrape never waits for the main loop. Labels are reasons and
nothing else: never a claim id (unbounded) and never anything from an input.

Latency is the `latency_ms` of `file.processed`: from the daemon's first sight of the file in
the inbox (its first event or the scan that found it; settling included) to the file being
done: its output durable in the outbox and its input gone. When a writer began, dcmwatch cannot
know.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from dcmwatch.config import Metrics as MetricsSettings

#: Seconds, from a single small file on an idle daemon to a backlog behind a CT series burst.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


class Metrics:
    def __init__(self, *, queue_depth: Callable[[], float],
                 utilisation: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._processed = Counter("dcmwatch_files_processed", "Files de-identified into the outbox",
                                  registry=r)
        self._quarantined = Counter("dcmwatch_files_quarantined", "Files put in quarantine",
                                    ["reason"], registry=r)
        self._latency = Histogram("dcmwatch_latency_seconds",
                                  "First sight in the inbox to a durable output, the input gone",
                                  buckets=LATENCY_BUCKETS, registry=r)
        Gauge("dcmwatch_queue_depth", "Files queued or settling, not yet claimed, plus claimed "
              "files waiting for a worker or a retry", registry=r).set_function(queue_depth)
        Gauge("dcmwatch_worker_utilisation", "Busy workers / workers (0..1)",
              registry=r).set_function(utilisation)
        Gauge("dcmwatch_last_success_age_seconds",
              "Seconds since the last file was processed (NaN before the first)",
              registry=r).set_function(self._last_success_age)
        self._last_success: float | None = None
        self._server: Any = None

    def processed(self, latency_s: float | None) -> None:
        self._processed.inc()
        self._last_success = time.monotonic()
        if latency_s is not None:
            self._latency.observe(max(latency_s, 0.0))

    def quarantined(self, reason: str) -> None:
        self._quarantined.labels(reason=reason).inc()

    def _last_success_age(self) -> float:
        last = self._last_success
        return math.nan if last is None else time.monotonic() - last

    def serve(self, settings: MetricsSettings) -> int:
        """Start the HTTP endpoint in a daemon thread; returns the port it listens on."""
        self._server, _thread = start_http_server(settings.port, settings.address, self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
