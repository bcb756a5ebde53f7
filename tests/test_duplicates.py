"""Duplicates (contract.md "Consultations"): Idempotency-Key replay and 409, and the 24 h fingerprint."""
import datetime as dt

from clobus_consult.db import db
from clobus_consult.models import Client, Consultation, SyncTask

from .conftest import AUTH
from .processes import race

BODY = {"client": {"email": "dup@example.com"}, "consultation": {"comment": "Один вопрос", "lang": "ru"}}


def create(api, body=BODY, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post("/api/consultations/create", json=body, headers=headers)


def count(app, model):
    with app.app_context(), db.connection_context():
        return model.select().count()


def test_same_key_replays_the_first_response(api, app):
    first = create(api, key="k-1")
    again = create(api, key="k-1")
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()
    assert count(app, Consultation) == 1


def test_same_key_other_body_is_409(api, app):
    create(api, key="k-2")
    other = {**BODY, "consultation": {"comment": "Другой вопрос"}}
    r = create(api, other, key="k-2")
    assert r.status_code == 409 and isinstance(r.get_json()["detail"], str)
    assert count(app, Consultation) == 1


def test_keys_are_scoped_per_endpoint(api):
    a = create(api, key="shared")
    client_id = a.get_json()["client_id"]
    b = api.post("/api/consultations/simple", json={"client_id": client_id, "comment": "Другое"},
                 headers={"Idempotency-Key": "shared"})
    assert b.status_code == 200
    assert b.get_json()["consultation"]["consultation_id"] != a.get_json()["consultation"]["consultation_id"]


def test_blank_key_is_422(api):
    r = create(api, key=" ")
    assert r.status_code == 422 and "Idempotency-Key" in r.get_json()["errors"]["headers"]


def test_identical_request_without_key_returns_the_open_consultation(api, app):
    first = create(api).get_json()
    second = create(api)
    assert second.status_code == 200
    assert second.get_json()["consultation"]["consultation_id"] == first["consultation"]["consultation_id"]
    assert second.get_json()["message"] == "Consultation already exists"
    assert count(app, Consultation) == 1


def test_any_difference_makes_a_new_consultation(api, app):
    create(api)
    for change in ({"comment": "Другой"}, {"lang": "uz"}, {"topic": "НДС"},
                   {"online_question": "3f8a3c1e-8a4b-4c1e-9f00-000000000002"}):
        create(api, {**BODY, "consultation": {**BODY["consultation"], **change}})
    assert count(app, Consultation) == 5


def test_closed_or_old_consultations_do_not_absorb(api, app):
    first = create(api).get_json()["consultation"]["consultation_id"]
    with app.app_context(), db.connection_context():
        Consultation.update(status="closed").where(Consultation.id == first).execute()
    second = create(api).get_json()["consultation"]["consultation_id"]
    assert second != first
    with app.app_context(), db.connection_context():
        old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=25)
        Consultation.update(created_at=old).where(Consultation.id == second).execute()
    third = create(api).get_json()["consultation"]["consultation_id"]
    assert third not in (first, second)
    assert create(api).get_json()["consultation"]["consultation_id"] == third


def test_concurrent_identical_creates_make_one_row(app):
    def call():
        r = app.test_client().post("/api/consultations/create", json=BODY, headers=AUTH)
        return r.status_code, r.get_json()["consultation"]["consultation_id"]

    results = race(16, call)
    assert {status for status, _ in results} == {200}
    assert len({cid for _, cid in results}) == 1
    assert count(app, Consultation) == 1 and count(app, Client) == 1
    assert count(app, SyncTask) == 2


def test_concurrent_same_idempotency_key_makes_one_row(app):
    def call():
        r = app.test_client().post("/api/consultations/create", json=BODY,
                                   headers={**AUTH, "Idempotency-Key": "race"})
        return r.status_code, r.get_json()["consultation"]["consultation_id"]

    results = race(16, call)
    assert {status for status, _ in results} == {200}
    assert len({cid for _, cid in results}) == 1
    assert count(app, Consultation) == 1
