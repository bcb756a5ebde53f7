"""Logs, metrics and the offline docs assets: what the operator sees.

Logs: one JSON object per line (python-json-logger) with the request id, which is taken from ``X-Request-ID``
or generated, returned in the response, stored on the sync tasks a request creates, and set again when those
tasks run later, so ``grep <id>`` shows a request and the syncs it caused.

Metrics: Prometheus at ``/metrics`` (prometheus-client). Under gunicorn with several workers the counters live
in ``PROMETHEUS_MULTIPROC_DIR`` (serve.py sets it up in gunicorn's master) and are summed at scrape time;
outbox task counts are read from the database at scrape time, so every worker reports the same truth.
"""
import contextvars
import logging
import os
import sys
import time

from flask import Blueprint, Flask, Response, g, request, send_from_directory
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

REQUESTS = Counter("clobus_http_requests_total", "HTTP requests", ["endpoint", "method", "status"])
LATENCY = Histogram("clobus_http_request_duration_seconds", "HTTP request latency", ["endpoint"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
UPSTREAM_LATENCY = Histogram("clobus_upstream_push_duration_seconds", "Duration of one sync task's upstream work",
                             ["target", "outcome"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
UPSTREAM_ERRORS = Counter("clobus_upstream_errors_total", "Failed sync attempts", ["target", "kind"])
BREAKER_OPEN = Gauge("clobus_breaker_open", "1 while this process skips inline attempts to an upstream",
                     ["upstream"], multiprocess_mode="max")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get()
        return True


def configure_logging(app: Flask) -> None:
    """JSON lines on stderr for the whole process (LOG_FORMAT=text for a human at a terminal)."""
    root = logging.getLogger()
    if any(getattr(h, "_clobus", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._clobus = True
    if app.config["LOG_FORMAT"] == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "name": "logger"}, timestamp="time"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(app.config["LOG_LEVEL"])
    # The scheduler would log every run of every job at INFO: only its warnings are news.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))


class OutboxCollector:
    """Sync tasks by target and state, counted in the database when Prometheus scrapes."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        from peewee import fn

        from .db import db
        from .models import SyncTask

        family = GaugeMetricFamily("clobus_sync_tasks", "Sync tasks by target and state", labels=["target", "state"])
        with self.app.app_context(), db.connection_context():
            rows = (SyncTask.select(SyncTask.target, SyncTask.state, fn.COUNT(SyncTask.id).alias("n"))
                    .group_by(SyncTask.target, SyncTask.state))
            for row in rows:
                family.add_metric([row.target, row.state], row.n)
        yield family


def _registry(app: Flask):
    from prometheus_client import REGISTRY

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in list(REGISTRY._collector_to_names):
            registry.register(collector)
    registry.register(OutboxCollector(app))
    return registry


def init_app(app: Flask) -> None:
    configure_logging(app)

    @app.before_request
    def _start():
        g.started = time.perf_counter()
        request_id_var.set(g.request_id)

    @app.after_request
    def _measure(response):
        endpoint = request.url_rule.rule if request.url_rule else "<unmatched>"
        if endpoint != "/metrics":
            REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
            if "started" in g:
                LATENCY.labels(endpoint).observe(time.perf_counter() - g.started)
        return response

    bp = Blueprint("observability", __name__)

    @bp.get("/metrics")
    def metrics():
        from .sync import outbox

        for name, breaker in outbox.upstreams(app).breakers.items():
            BREAKER_OPEN.labels(name).set(1 if breaker.state == "open" else 0)
        return Response(generate_latest(_registry(app)), mimetype=CONTENT_TYPE_LATEST)

    @bp.get("/docs/assets/<path:filename>")
    def docs_asset(filename):
        """Swagger UI's files, served by the service itself: /docs works without internet access."""
        import swagger_ui_bundle

        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)

    app.register_blueprint(bp)
