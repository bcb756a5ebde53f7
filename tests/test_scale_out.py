"""Correctness across threads and processes (run on SQLite and, via scripts/pytest-postgres.py, PostgreSQL)."""
import concurrent.futures as cf
import uuid

import requests

from clobus_consult.db import db
from clobus_consult.models import Client, Consultation

from .conftest import AUTH, TOKEN
from .processes import gunicorn, race


def test_50_parallel_identical_client_upserts_make_one_client(app):
    body = {"email": "fifty@example.com", "phone_number": "+998901234567", "org_inn": "123456789", "city": "Хива"}

    def upsert():
        r = app.test_client().post("/api/clients", json=body, headers=AUTH)
        return r.status_code, r.get_json().get("client_id")

    results = race(50, upsert)
    assert {status for status, _ in results} == {200}
    assert len({cid for _, cid in results}) == 1
    with app.app_context(), db.connection_context():
        assert Client.select().count() == 1


def test_50_parallel_identical_creates_make_one_consultation(app):
    body = {"client": {"email": "fifty@example.com"}, "consultation": {"comment": "Пятьдесят раз"}}

    def create():
        r = app.test_client().post("/api/consultations/create", json=body, headers=AUTH)
        return r.status_code, r.get_json()["consultation"]["consultation_id"]

    results = race(50, create)
    assert {status for status, _ in results} == {200}
    assert len({cid for _, cid in results}) == 1
    with app.app_context(), db.connection_context():
        assert Consultation.select().count() == 1 and Client.select().count() == 1


def test_four_gunicorn_workers_on_sqlite_lose_nothing_under_concurrent_writes(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    env = {"CLOBUS_AUTH_MODE": "static", "CLOBUS_API_TOKENS": TOKEN,
           "CLOBUS_DATABASE_URL": f"sqlite:///{tmp_path}/four.sqlite3"}
    session = requests.Session()
    with gunicorn(instance, env, workers=4, threads=4) as url:
        def create(i):
            r = session.post(f"{url}/api/consultations/create", headers=AUTH, timeout=30, json={
                "client": {"email": f"w{i % 40}@example.com"},
                "consultation": {"comment": f"Запрос {i} {uuid.uuid4().hex}"}})
            return r.status_code, r.json()["consultation"]["consultation_id"]

        with cf.ThreadPoolExecutor(32) as pool:
            results = list(pool.map(create, range(400)))
        statuses = [s for s, _ in results]
        assert statuses.count(200) == 400, {s: statuses.count(s) for s in set(statuses)}
        ids = {cid for _, cid in results}
        assert len(ids) == 400
        total = sum(session.get(f"{url}/api/tickets/clients/{cid}/tickets", headers=AUTH, timeout=10).json()["total"]
                    for cid in {session.post(f"{url}/api/clients", json={"email": f"w{k}@example.com"},
                                             headers=AUTH, timeout=10).json()["client_id"] for k in range(40)})
        assert total == 400
    log = next(tmp_path.glob("gunicorn-*.log")).read_text()
    assert "database is locked" not in log and "Traceback" not in log
