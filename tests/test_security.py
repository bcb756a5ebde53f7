"""Rate limits, proxy trust, CORS and headers; secrets never in responses or logs."""
import logging
import time

import pytest

from .conftest import AUTH, TOKEN


@pytest.fixture
def limited(make_app):
    return make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="5 per 2 seconds", RATELIMIT_CREATE="2 per 2 seconds",
                    RATELIMIT_PER_IP="8 per 2 seconds", RATELIMIT_STORAGE_URI="memory://")


def get(client, ip="203.0.113.7", forged=None, headers=AUTH):
    chain = f"{forged}, {ip}" if forged else ip
    return client.get("/api/clients/by-hash/none", headers={**headers, "X-Forwarded-For": chain})


def test_rate_limit_hits_with_retry_after_then_resets(limited):
    client = limited.test_client()
    codes = [get(client).status_code for _ in range(6)]
    assert codes[:5] == [404] * 5 and codes[5] == 429
    r = get(client)
    assert r.status_code == 429 and isinstance(r.get_json()["detail"], str)
    assert int(r.headers["Retry-After"]) >= 0
    time.sleep(2.1)
    assert get(client).status_code == 404


def test_create_endpoints_have_the_stricter_limit(limited):
    client = limited.test_client()
    body = {"client": {"email": "rl@example.com"}, "consultation": {"comment": "x"}}
    codes = [client.post("/api/consultations/create", json=body, headers=AUTH,
                         environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_spoofed_forwarded_for_does_not_dodge_the_ip_limit(limited):
    client = limited.test_client()
    statuses = [get(client, forged=f"10.0.0.{i}", headers={"Authorization": f"Bearer bad-{i}"}).status_code
                for i in range(10)]
    assert statuses[:8] == [401] * 8 and statuses[8:] == [429, 429]
    # Another real client address behind nginx is counted on its own.
    assert get(client, ip="198.51.100.9", headers={"Authorization": "Bearer x"}).status_code == 401


def test_health_is_never_limited(limited):
    client = limited.test_client()
    assert all(client.get("/api/health").status_code == 200 for _ in range(12))


def test_cors_only_for_configured_origins(make_app):
    app = make_app(CORS_ORIGINS="https://clobus.uz")
    client = app.test_client()
    r = client.get("/api/health", headers={"Origin": "https://clobus.uz"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://clobus.uz"
    r = client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    r = client.options("/api/consultations/create", headers={
        "Origin": "https://clobus.uz", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 200 and "Authorization" in r.headers["Access-Control-Allow-Headers"]


def test_json_api_headers(client):
    r = client.get("/api/health")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def test_secrets_never_reach_responses_or_logs(make_app, caplog):
    app = make_app(CHATWOOT_URL="http://127.0.0.1:9", CHATWOOT_API_TOKEN="cw-secret-token-xyz",
                   ONEC_URL="http://127.0.0.1:9/odata/", ONEC_USER="u", ONEC_PASSWORD="onec-secret-pass",
                   SYNC_INLINE_BUDGET_SECONDS=2)
    client = app.test_client()
    with caplog.at_level(logging.DEBUG):
        r = client.post("/api/consultations/create", headers=AUTH, json={
            "client": {"email": "s@example.com"}, "consultation": {"comment": "x"}})
        client.get("/api/clients/x", headers={"Authorization": "Bearer wrong-token-abc"})
    text = r.get_data(as_text=True) + caplog.text
    for secret in ("cw-secret-token-xyz", "onec-secret-pass", TOKEN, "wrong-token-abc"):
        assert secret not in text
    assert r.get_json()["consultation"]["sync"]["chatwoot"]["state"] == "pending"


def test_unhandled_error_is_a_bare_500(make_app, monkeypatch):
    app = make_app()

    def boom(*a, **kw):
        raise RuntimeError("SELECT secret FROM somewhere")

    monkeypatch.setattr("clobus_consult.api.tickets.find_ticket", boom)
    r = app.test_client().get("/api/tickets/1", headers=AUTH)
    assert r.status_code == 500 and r.get_json() == {"detail": "Internal server error"}


def _redis_url():
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return None
    return "redis://127.0.0.1:6379"


@pytest.mark.skipif(_redis_url() is None, reason="no Redis on 127.0.0.1:6379 for shared rate-limit counters")
def test_rate_limit_is_exact_across_gunicorn_workers_with_shared_storage(tmp_path):
    """With RATELIMIT_STORAGE_URI=redis:// the limit holds across worker processes (memory:// is per process)."""
    import uuid

    import requests

    from .processes import gunicorn

    instance = tmp_path / "instance"
    instance.mkdir()
    token = "rl-" + uuid.uuid4().hex  # counters are keyed by token: a fresh one starts from zero
    env = {"CLOBUS_AUTH_MODE": "static", "CLOBUS_API_TOKENS": token, "CLOBUS_RATELIMIT_ENABLED": "true",
           "CLOBUS_RATELIMIT_DEFAULT": "10 per minute", "CLOBUS_RATELIMIT_STORAGE_URI": _redis_url()}
    with gunicorn(instance, env, workers=3, threads=1) as url:
        # Each request on a new connection, so gunicorn spreads them over its workers.
        codes = [requests.get(f"{url}/api/clients/by-hash/none", headers={"Authorization": f"Bearer {token}"},
                              timeout=10).status_code for _ in range(14)]
    assert codes.count(404) == 10 and codes.count(429) == 4, codes
