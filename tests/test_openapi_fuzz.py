"""Property-based campaign against the service's own OpenAPI document (schemathesis + hypothesis).

Every operation of ``GET /api/openapi.json`` except the Chatwoot webhook (it answers 404 unless a webhook secret
or token is configured, and its authentication is not in the document) is exercised with schemathesis' examples,
coverage (boundary and negative values, undeclared methods, missing credentials) and fuzzing phases, with the
bearer token on every request. For every generated request:

- no 5xx;
- every 4xx has a JSON body with a non-empty string ``detail``;
- every documented status code comes with a body that matches its documented schema (2xx and errors alike);
- a 200 from a create also leaves readable resources: the client, its ticket list and the consultation are
  fetched back and checked against their own response schemas.

Generation is derandomized (Hypothesis derives a fixed seed from each test: the same requests on every run) and
bounded so that the file runs in a few seconds. One app and one database (a SQLite file, or
CLOBUS_TEST_DATABASE_URL) serve the whole module, so later requests meet the data earlier ones made.

Note: schemathesis' lazy ``from_fixture`` loader touches ``Node._nodeid``, which pytest 9.2 no longer has, so
the schema is loaded eagerly at import from a throwaway app (in-memory database, no migrations) and every case is
sent to the module's app with ``call(app=...)``.
"""
import datetime as dt
import tempfile
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from clobus_consult import create_app
from clobus_consult.db import db

from .conftest import AUTH, TOKEN, _database_url, _empty_postgres

SETTINGS = {
    "TESTING": True, "AUTH_MODE": "static", "API_TOKENS": TOKEN, "SCHEDULER_ENABLED": False,
    "RATELIMIT_ENABLED": False, "CHATWOOT_URL": None, "ONEC_URL": None,
}
MAX_EXAMPLES = 40  # per operation and generation mode, on top of the examples and coverage phases


def _openapi_document() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({**SETTINGS, "DATABASE_URL": "sqlite:///:memory:", "MIGRATE_ON_START": False},
                         instance_path=tmp)
        response = app.test_client().get("/api/openapi.json")
        assert response.status_code == 200
        return response.get_json()


CONFIG = SchemathesisConfig.from_dict({
    "generation": {"deterministic": True, "max-examples": MAX_EXAMPLES, "database": "none"},
    "headers": dict(AUTH),
    "phases": {"stateful": {"enabled": False}},
})
schema = schemathesis.openapi.from_dict(_openapi_document(), config=CONFIG).exclude(path="/api/webhooks/chatwoot")


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openapi-fuzz")
    url = _database_url(folder)  # SQLite in the folder, or CLOBUS_TEST_DATABASE_URL as for the other tests
    app = create_app({**SETTINGS, "DATABASE_URL": url}, instance_path=str(folder / "instance"))
    if url.startswith("postgres"):
        _empty_postgres()
    yield app
    if not db.is_closed():
        db.close()
    if db.obj is not None:
        db.obj.close_all()


def error_has_detail(ctx, response, case):
    """contract.md: every error body has ``detail``, a human-readable string."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} with a body that is not JSON: {response.text[:300]!r}") from None
    detail = body.get("detail") if isinstance(body, dict) else None
    assert isinstance(detail, str) and detail, f"{response.status_code} without a string detail: {body!r}"
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          error_has_detail]


def _validated_get(app, path: str, template: str):
    response = app.test_client().get(path, headers=AUTH)
    assert response.status_code == 200, (path, response.status_code, response.get_data(as_text=True)[:500])
    schema[template]["GET"].validate_response(response)
    return response.get_json()


def read_back(app, case, response) -> None:
    """After a successful write, what it names can be read and matches the documented GET responses."""
    if case.method != "POST" or response.status_code != 200:
        return
    body = response.json()
    client_id = body["client_id"]
    client = _validated_get(app, f"/api/clients/{client_id}", "/api/clients/{client_id}")
    listed = _validated_get(app, f"/api/tickets/clients/{client_id}/tickets",
                            "/api/tickets/clients/{client_id}/tickets")
    if case.path.startswith("/api/consultations/"):
        consultation = body["consultation"]
        ticket = _validated_get(app, f"/api/tickets/{consultation['consultation_id']}", "/api/tickets/{cons_id}")
        assert ticket == consultation
        assert consultation["consultation_id"] in {t["consultation_id"] for t in listed["tickets"]}
    elif client.get("client_id_hash"):
        by_hash = _validated_get(app, "/api/clients/by-hash/" + quote(client["client_id_hash"], safe=""),
                                 "/api/clients/by-hash/{client_hash}")
        assert by_hash["client_id"] == client_id


@schema.parametrize()
def test_openapi_operations(case, fuzz_app):
    response = case.call(app=fuzz_app)
    case.validate_response(response, checks=CHECKS)
    read_back(fuzz_app, case, response)


# Free-text fields, generated from the document's own schemas, must come back exactly as sent. Identity fields are
# replaced by valid ones so that most requests get past validation (random strings are never an email or phone).
FREE_TEXT = ("country", "region", "city", "org_id", "subs_id", "tariff_id", "tariffperiod_id", "client_id_hash")
EMAILS = st.from_regex(r"\A[a-z0-9]{1,12}(\.[a-z0-9]{1,8})?@[a-z]{1,10}\.(com|uz|ru)\Z")
PHONES = st.sampled_from([None, "+998901234567", "+998 90 765 43 21", "90 111 22 33", "+7 912 345-67-89"])
INNS = st.sampled_from([None, "123456789", "12345678901234", "123 456 789"])
ROUND_TRIP = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@ROUND_TRIP
@given(case=schema["/api/clients"]["POST"].as_strategy(), email=EMAILS, phone=PHONES, inn=INNS)
def test_generated_clients_round_trip(fuzz_app, case, email, phone, inn):
    body = {**case.body, "email": email, "phone_number": phone, "org_inn": inn, "client_id": None}
    response = fuzz_app.test_client().post("/api/clients", json=body, headers=AUTH)
    case.validate_response(response, checks=CHECKS)
    if response.status_code != 200:
        assert response.status_code in (409, 422), response.get_data(as_text=True)
        return
    stored = response.get_json()
    for name in FREE_TEXT:
        if body.get(name) is not None:
            assert stored[name] == body[name], name
    assert stored == _validated_get(fuzz_app, f"/api/clients/{stored['client_id']}", "/api/clients/{client_id}")


@ROUND_TRIP
@given(case=schema["/api/consultations/create"]["POST"].as_strategy(), email=EMAILS,
       minutes=st.one_of(st.none(), st.integers(2, 60 * 24 * 29)))
def test_generated_consultations_round_trip(fuzz_app, case, email, minutes):
    consultation = {**case.body["consultation"], "client_id": None, "cl_ref_key": None, "org_inn": None}
    consultation["scheduled_at"] = None if minutes is None else (
        dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).isoformat()
    body = {**case.body, "client": {"email": email}, "consultation": consultation}
    response = fuzz_app.test_client().post("/api/consultations/create", json=body, headers=AUTH)
    case.validate_response(response, checks=CHECKS)
    if response.status_code != 200:
        assert response.status_code == 422, response.get_data(as_text=True)
        return
    answer = response.get_json()
    stored = answer["consultation"]
    assert stored["comment"] == consultation["comment"]
    assert stored["topic"] == consultation.get("topic")
    if answer["message"] == "Consultation created successfully":  # not a repeat absorbed by the duplicate rule
        assert stored["source"] == body.get("source", "SITE")
        assert stored["importance"] == consultation.get("importance")
    ticket = _validated_get(fuzz_app, f"/api/tickets/{stored['consultation_id']}", "/api/tickets/{cons_id}")
    assert ticket == stored
