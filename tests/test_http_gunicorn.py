"""The service over real HTTP under gunicorn with several worker processes, configured from the environment."""
import concurrent.futures as cf
import uuid

import pytest
import requests

from .processes import gunicorn

TOKEN = "gunicorn-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("gunicorn") / "instance"
    instance.mkdir()
    env = {"CLOBUS_AUTH_MODE": "static", "CLOBUS_API_TOKENS": TOKEN}
    with gunicorn(instance, env, workers=3) as url:
        yield url


def test_full_flow_over_http(server):
    r = requests.post(f"{server}/api/consultations/create", headers=AUTH, timeout=10, json={
        "client": {"email": "user@example.com", "phone_number": "+998901234567", "org_inn": "123456789"},
        "consultation": {"comment": "Нужна консультация по НДС", "lang": "ru"}, "source": "SITE",
    })
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["message"] == "Consultation created successfully"
    ticket = requests.get(f"{server}/api/tickets/{body['consultation']['consultation_id']}", headers=AUTH,
                          timeout=10)
    assert ticket.json()["comment"] == "Нужна консультация по НДС"
    listed = requests.get(f"{server}/api/tickets/clients/{body['client_id']}/tickets?skip=0&limit=100",
                          headers=AUTH, timeout=10).json()
    assert listed["total"] == 1
    client = requests.get(f"{server}/api/clients/{body['client_id']}", headers=AUTH, timeout=10).json()
    assert client["phone_number"] == "+998901234567"


def test_errors_over_http(server):
    assert requests.get(f"{server}/api/clients/x", timeout=10).status_code == 401
    r = requests.post(f"{server}/api/consultations/create", headers={**AUTH, "Content-Type": "application/json"},
                      data=b"{nope", timeout=10)
    assert r.status_code == 400 and r.json()["detail"] == "Malformed JSON body"
    r = requests.post(f"{server}/api/clients", headers={**AUTH, "Content-Type": "application/json"},
                      data=b"{" + b" " * 100_000 + b"}", timeout=10)
    assert r.status_code == 413


def test_concurrent_identical_requests_across_workers_make_one_consultation(server):
    body = {"client": {"email": "race@example.com", "org_inn": "123456789"},
            "consultation": {"comment": "Гонка", "lang": "ru"}}

    def call(_):
        return requests.post(f"{server}/api/consultations/create", headers=AUTH, json=body, timeout=30)

    with cf.ThreadPoolExecutor(24) as pool:
        responses = list(pool.map(call, range(48)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["consultation"]["consultation_id"] for r in responses}) == 1
    assert len({r.json()["client_id"] for r in responses}) == 1


def test_openapi_and_docs_over_http(server):
    assert requests.get(f"{server}/api/openapi.json", timeout=10).json()["info"]["title"] == "clobus-consult"
    assert requests.get(f"{server}/docs", timeout=10).status_code == 200


def test_access_log_is_json_with_request_id_and_no_query_string(tmp_path):
    import json

    instance = tmp_path / "instance"
    instance.mkdir()
    env = {"CLOBUS_AUTH_MODE": "static", "CLOBUS_API_TOKENS": TOKEN, "GUNICORN_ACCESSLOG": "-",
           "CLOBUS_CHATWOOT_WEBHOOK_TOKEN": "secret-in-url"}
    with gunicorn(instance, env, workers=1) as url:
        requests.get(f"{url}/api/health", headers={"X-Request-ID": "access-1"}, timeout=10)
        requests.post(f"{url}/api/webhooks/chatwoot?token=secret-in-url", json={"event": "x"}, timeout=10)
    log = next(tmp_path.glob("gunicorn-*.log")).read_text()
    assert "secret-in-url" not in log
    access = [json.loads(line) for line in log.splitlines()
              if line.startswith("{") and '"gunicorn.access"' in line]
    health = next(a for a in access if a["request_id"] == "access-1")
    assert health["path"] == "/api/health" and health["status"] == 200 and health["duration_ms"] >= 0
    assert any(a["path"] == "/api/webhooks/chatwoot" for a in access)
