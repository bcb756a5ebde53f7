"""Bad input: every case gets its documented 4xx with a string ``detail``, and nothing is written."""
import datetime as dt
import json

import pytest

from .conftest import AUTH

GOOD_CLIENT = {"email": "a@example.com"}
JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}


def post(client, body, path="/api/consultations/create", **kw):
    return client.post(path, data=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"}, **kw)


def assert_error(r, status):
    assert r.status_code == status, r.get_data(as_text=True)
    body = r.get_json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def nothing_stored(client):
    r = client.post("/api/clients", json=GOOD_CLIENT, headers=AUTH)
    client_id = r.get_json()["client_id"]
    return client.get(f"/api/tickets/clients/{client_id}/tickets", headers=AUTH).get_json()["total"] == 0


def test_malformed_json(client):
    r = client.post("/api/consultations/create", data='{"client": ', headers=JSON_HEADERS)
    assert assert_error(r, 400)["detail"] == "Malformed JSON body"


def test_invalid_utf8(client):
    r = client.post("/api/clients", data=b'{"email": "\xff\xfe"}', headers=JSON_HEADERS)
    assert_error(r, 400)


def test_wrong_content_type(client):
    r = client.post("/api/consultations/create", data="client=x", headers={**AUTH, "Content-Type": "text/plain"})
    assert assert_error(r, 415)["detail"] == "Content-Type must be application/json"
    r = client.post("/api/clients", data="email=a@b.c", headers=AUTH,
                    content_type="application/x-www-form-urlencoded")
    assert_error(r, 415)


def test_oversize_body(client):
    r = post(client, {"client": GOOD_CLIENT, "consultation": {"comment": "x" * 70_000}})
    assert assert_error(r, 413)["detail"] == "Request body too large"


def test_deeply_nested_json(client):
    depth = 20_000
    r = client.post("/api/clients", data="[" * depth + "]" * depth, headers=JSON_HEADERS)
    assert_error(r, 400)


@pytest.mark.parametrize("consultation, field", [
    ({}, "comment"),
    ({"comment": "   "}, "comment"),
    ({"comment": "x" * 10_001}, "comment"),
    ({"comment": 5}, "comment"),
    ({"comment": "x", "lang": "en"}, "lang"),
    ({"comment": "x", "importance": 0}, "importance"),
    ({"comment": "x", "importance": 4}, "importance"),
    ({"comment": "x", "importance": "2"}, "importance"),
    ({"comment": "x", "importance": 2.5}, "importance"),
    ({"comment": "x", "scheduled_at": "tomorrow"}, "scheduled_at"),
    ({"comment": "x", "scheduled_at": "2020-01-01T10:00:00Z"}, "scheduled_at"),
    ({"comment": "x", "scheduled_at": "2999-01-01T10:00:00Z"}, "scheduled_at"),
    ({"comment": "x", "online_question": "not-a-uuid"}, "online_question"),
    ({"comment": "x", "org_inn": "12345"}, "org_inn"),
    ({"comment": "x", "surprise": 1}, "surprise"),
])
def test_consultation_field_errors(client, consultation, field):
    r = post(client, {"client": GOOD_CLIENT, "consultation": consultation})
    body = assert_error(r, 422)
    assert body["detail"] == "Validation error"
    assert field in body["errors"]["json"]["consultation"]
    assert nothing_stored(client)


@pytest.mark.parametrize("client_fields, field", [
    ({"email": "not-an-email"}, "email"),
    ({"email": "a@b@c.com"}, "email"),
    ({"phone_number": "12"}, "phone_number"),
    ({"phone_number": "phone"}, "phone_number"),
    ({"email": "a@example.com", "org_inn": "12345678a"}, "org_inn"),
    ({"email": "a@example.com", "org_inn": "1234567890"}, "org_inn"),
    ({"email": "a@example.com", "client_id": "42"}, "client_id"),
    ({"email": "a@example.com", "subs_start": "yesterday"}, "subs_start"),
    ({"email": "a@example.com", "city": "x" * 256}, "city"),
    ({"email": "a@example.com", "nickname": "x"}, "nickname"),
])
def test_client_field_errors(client, client_fields, field):
    r = post(client, {"client": client_fields, "consultation": {"comment": "x"}})
    assert field in assert_error(r, 422)["errors"]["json"]["client"]
    r = post(client, client_fields, path="/api/clients")
    assert field in assert_error(r, 422)["errors"]["json"]


def test_wrong_top_level_types(client):
    for body in ([], "text", 42, None, {"client": "x", "consultation": {"comment": "x"}},
                 {"client": GOOD_CLIENT, "consultation": [1]}, {"client": GOOD_CLIENT, "consultation": {"comment": "x"},
                                                               "source": "FAX"}):
        assert_error(post(client, body), 422)


def test_nul_bytes_are_refused(client):
    r = post(client, {"client": GOOD_CLIENT, "consultation": {"comment": "a\u0000b"}})
    assert_error(r, 422)


def test_scheduled_at_grace_minute(client):
    just_now = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=20)).isoformat()
    r = post(client, {"client": GOOD_CLIENT, "consultation": {"comment": "x", "scheduled_at": just_now}})
    assert r.status_code == 200


@pytest.mark.parametrize("query", ["skip=-1", "limit=0", "limit=1001", "skip=abc", "limit=1.5",
                                   "skip=99999999999999999999"])
def test_paging_out_of_range(client, query):
    client_id = client.post("/api/clients", json=GOOD_CLIENT, headers=AUTH).get_json()["client_id"]
    r = client.get(f"/api/tickets/clients/{client_id}/tickets?{query}", headers=AUTH)
    assert "query" in assert_error(r, 422)["errors"]


@pytest.mark.parametrize("path, detail", [
    ("/api/clients/not-a-uuid", "Client not found"),
    ("/api/clients/00000000-0000-4000-8000-000000000000", "Client not found"),
    ("/api/clients/by-hash/unknown", "Client not found"),
    ("/api/tickets/not-a-ticket", "Ticket not found"),
    ("/api/tickets/00000000-0000-4000-8000-000000000000", "Ticket not found"),
    ("/api/tickets/" + "9" * 500, "Ticket not found"),
    ("/api/tickets/clients/not-a-uuid/tickets", "Client not found"),
    ("/api/tickets/clients/00000000-0000-4000-8000-000000000000/tickets", "Client not found"),
])
def test_unknown_and_malformed_ids(client, path, detail):
    assert assert_error(client.get(path, headers=AUTH), 404)["detail"] == detail


def test_unknown_route_and_method(client):
    assert_error(client.get("/api/nothing-here", headers=AUTH), 404)
    assert_error(client.get("/api/consultations/create", headers=AUTH), 405)


def test_missing_and_wrong_token(client):
    r = client.post("/api/clients", json=GOOD_CLIENT)
    assert_error(r, 401)
    assert r.headers["WWW-Authenticate"] == "Bearer"
    r = client.post("/api/clients", json=GOOD_CLIENT, headers={"Authorization": "Bearer wrong"})
    assert_error(r, 401)
    r = client.get("/api/clients/by-hash/x", headers={"Authorization": "Basic abc"})
    assert_error(r, 401)
