"""What the operator sees: /metrics, /api/health/ready, offline /docs, request ids in the logs."""
import json
import re

from clobus_consult.db import db
from clobus_consult.migrate import runner

from .conftest import AUTH


def test_metrics_count_requests_and_sync_tasks(client, api):
    api.post("/api/consultations/create", json={"client": {"email": "m@example.com"},
                                                "consultation": {"comment": "Метрики"}})
    api.get("/api/clients/by-hash/none")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    text = r.get_data(as_text=True)
    assert re.search(r'clobus_http_requests_total\{endpoint="/api/consultations/create",method="POST",'
                     r'status="200"\} [1-9]', text)
    assert 'clobus_http_requests_total{endpoint="/api/clients/by-hash/<path:client_hash>",method="GET",status="404"}' \
        in text
    assert "clobus_http_request_duration_seconds_bucket" in text
    assert re.search(r'clobus_sync_tasks\{state="disabled",target="chatwoot"\} 1\.0', text)
    assert 'clobus_breaker_open{upstream="chatwoot"} 0.0' in text


def test_ready_checks_database_and_migrations(app, client):
    r = client.get("/api/health/ready")
    assert r.status_code == 200
    assert r.get_json()["status"] == "ready" and r.get_json()["checks"]["migrations"] == "ok"
    with app.app_context(), db.connection_context():
        history = runner().History
        applied = list(history.select().dicts())
        history.delete().execute()  # as if the code were newer than the schema
    try:
        r = client.get("/api/health/ready")
        assert r.status_code == 503 and r.get_json()["status"] == "not ready"
        assert r.get_json()["checks"]["migrations"].startswith("pending")
    finally:
        with app.app_context(), db.connection_context():
            history.insert_many(applied).execute()


def test_docs_render_with_assets_served_locally(client):
    page = client.get("/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200 and len(r.data) > 1000, asset
    assert client.get("/api/openapi.json").status_code == 200


def test_request_id_is_taken_or_generated_and_sanitised(client):
    assert client.get("/api/health", headers={"X-Request-ID": "req-42"}).headers["X-Request-ID"] == "req-42"
    generated = client.get("/api/health", headers={"X-Request-ID": "bad\u0001id"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_json_log_lines_carry_the_request_id(make_app, capfd):
    from clobus_consult.observability import RequestIdFilter

    app = make_app(CHATWOOT_URL="http://127.0.0.1:9", SYNC_INLINE_BUDGET_SECONDS=2)
    handler = next(h for h in __import__("logging").getLogger().handlers if getattr(h, "_clobus", False))
    assert any(isinstance(f, RequestIdFilter) for f in handler.filters)
    import io

    stream = io.StringIO()
    handler.setStream(stream)
    try:
        app.test_client().post("/api/consultations/create", headers={**AUTH, "X-Request-ID": "trace-me-1"},
                               json={"client": {"email": "log@example.com"}, "consultation": {"comment": "x"}})
    finally:
        handler.setStream(__import__("sys").stderr)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    sync_lines = [line for line in lines if line["logger"] == "clobus_consult.sync.outbox"]
    assert sync_lines and all(line["request_id"] == "trace-me-1" for line in sync_lines)
    assert {"time", "level", "message"} <= set(sync_lines[0])
