"""Status flowing back: Chatwoot webhooks (signed / token / stale / replayed / out of order) and the 1C pull."""
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid

import pytest

from clobus_consult.db import db
from clobus_consult.models import Consultation

from .conftest import AUTH
from .upstreams import WEBHOOK_SECRET, start_onec, upstream_config

URL = "/api/webhooks/chatwoot"


def make_consultation(app, cons_id="77", **fields):
    r = app.test_client().post("/api/consultations/create", headers=AUTH, json={
        "client": {"email": f"{uuid.uuid4().hex[:8]}@example.com"}, "consultation": {"comment": "Вопрос"}})
    cid = r.get_json()["consultation"]["consultation_id"]
    with app.app_context(), db.connection_context():
        Consultation.update(cons_id=cons_id, **fields).where(Consultation.id == cid).execute()
    return cid


def status_of(app, cid):
    return app.test_client().get(f"/api/tickets/{cid}", headers=AUTH).get_json()


def signed(client, payload, secret=WEBHOOK_SECRET, ts=None, delivery=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    ts = str(int(time.time()) if ts is None else ts)
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return client.post(URL, data=body, content_type="application/json", headers={
        "X-Chatwoot-Signature": f"sha256={sig}", "X-Chatwoot-Timestamp": ts,
        "X-Chatwoot-Delivery": delivery or str(uuid.uuid4())})


def event(cons_id="77", status="resolved", at=None, name="conversation_status_changed"):
    at = int(time.time()) if at is None else at
    return {"event": name, "id": int(cons_id), "status": status, "timestamp": at, "inbox_id": 1,
            "changed_attributes": None, "custom_attributes": {}, "meta": {}, "messages": []}


@pytest.fixture
def hook_app(make_app):
    return make_app(CHATWOOT_WEBHOOK_SECRET=WEBHOOK_SECRET)


def test_resolved_closes_and_sets_end_date(hook_app):
    cid = make_consultation(hook_app)
    at = int(time.time())
    r = signed(hook_app.test_client(), event(at=at))
    assert r.status_code == 200 and r.get_json()["result"] == "closed"
    t = status_of(hook_app, cid)
    assert t["status"] == "closed"
    assert t["end_date"] == dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_reopened_after_closed_is_pending(hook_app):
    cid = make_consultation(hook_app)
    client = hook_app.test_client()
    signed(client, event(status="resolved", at=1000))
    signed(client, event(status="open", at=1001, name="conversation_updated"))
    t = status_of(hook_app, cid)
    assert t["status"] == "pending" and t["end_date"] is None


def test_out_of_order_delivery_is_ignored(hook_app):
    cid = make_consultation(hook_app)
    client = hook_app.test_client()
    assert signed(client, event(status="open", at=2000)).get_json()["result"] in ("unchanged", "pending")
    assert signed(client, event(status="resolved", at=1990)).get_json()["result"] == "stale"
    assert status_of(hook_app, cid)["status"] == "new"


def test_replayed_delivery_is_ignored(hook_app):
    cid = make_consultation(hook_app)
    client = hook_app.test_client()
    signed(client, event(status="resolved", at=3000), delivery="d-1")
    signed(client, event(status="open", at=3001), delivery="d-2")
    again = signed(client, event(status="resolved", at=3000), delivery="d-1")
    assert again.get_json()["result"] == "duplicate delivery"
    assert status_of(hook_app, cid)["status"] == "pending"


def test_bad_signature_and_stale_timestamp_are_401(hook_app):
    cid = make_consultation(hook_app)
    client = hook_app.test_client()
    assert signed(client, event(), secret="wrong").status_code == 401
    r = signed(client, event(), ts=int(time.time()) - 600)
    assert r.status_code == 401 and r.get_json()["detail"] == "Stale webhook timestamp"
    body = json.dumps(event()).encode()
    tampered = signed(client, None, raw=body)  # signed properly...
    assert tampered.status_code == 200
    r = client.post(URL, data=body, content_type="application/json")  # ...but unsigned is refused
    assert r.status_code == 401
    assert status_of(hook_app, cid)["status"] == "closed"  # only the one good delivery counted


def test_unsigned_chatwoot_with_url_token(make_app):
    app = make_app(CHATWOOT_WEBHOOK_TOKEN="url-token-123")
    cid = make_consultation(app)
    client = app.test_client()
    assert client.post(URL + "?token=nope", json=event()).status_code == 401
    assert client.post(URL + "?token=url-token-123", json=event()).status_code == 200
    assert status_of(app, cid)["status"] == "closed"


def test_webhook_is_404_when_not_configured(client):
    assert client.post(URL, json=event()).status_code == 404


def test_unknown_conversation_and_other_events_are_harmless(hook_app):
    client = hook_app.test_client()
    assert signed(client, event(cons_id="999")).get_json()["result"] == "unknown conversation"
    assert signed(client, {"event": "message_created", "id": 5}).get_json()["result"] == "ignored"
    assert signed(client, None, raw=b"[1, 2]").status_code == 422
    assert signed(client, None, raw=b"{not json").status_code == 400


def test_emulator_webhooks_reach_the_service_end_to_end(make_app, tmp_path):
    """Chatwoot emulator → signed webhook over HTTP → the service under gunicorn-like real HTTP."""
    from clobus_consult.emulators.server import ServerThread

    from .upstreams import start_chatwoot

    app = make_app(CHATWOOT_WEBHOOK_SECRET=WEBHOOK_SECRET)
    with ServerThread(app) as service:
        cw_server, cw = start_chatwoot(webhook_url=f"{service.url}{URL}")
        try:
            service_app = make_app(**upstream_config(cw, None), CHATWOOT_WEBHOOK_SECRET=WEBHOOK_SECRET)
            r = service_app.test_client().post("/api/consultations/create", headers=AUTH, json={
                "client": {"email": "e2e@example.com"}, "consultation": {"comment": "Вопрос"}})
            c = r.get_json()["consultation"]
            assert c["cons_id"]
            cw.set_status(c["cons_id"], "resolved")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and status_of(app, c["consultation_id"])["status"] != "closed":
                time.sleep(0.05)
            assert status_of(app, c["consultation_id"])["status"] == "closed"
        finally:
            cw_server.stop()


def test_pull_maps_1c_changes_onto_consultations(make_app):
    server, oc = start_onec()
    try:
        app = make_app(**upstream_config(None, oc))
        made = []
        for i in range(3):
            r = app.test_client().post("/api/consultations/create", headers=AUTH, json={
                "client": {"email": f"pull{i}@example.com"}, "consultation": {"comment": f"Вопрос {i}"}})
            made.append(r.get_json()["consultation"])
        assert all(c["cl_ref_key"] for c in made)
        end = "2026-11-30T15:00:00"
        oc.patch_document(made[0]["cl_ref_key"], {"ВидОбращения": "КонсультацияИТС", "Конец": end})
        oc.patch_document(made[1]["cl_ref_key"], {"ВидОбращения": "Другое"})
        result = app.test_cli_runner().invoke(args=["sync", "pull"])
        assert result.exit_code == 0, result.output
        statuses = [status_of(app, c["consultation_id"]) for c in made]
        assert statuses[0]["status"] == "closed" and statuses[0]["end_date"] == "2026-11-30T10:00:00Z"
        assert statuses[1]["status"] == "other"
        assert statuses[2]["status"] == "pending"  # ВОчередьНаКонсультацию, as created
        # A second pull re-reads the margin but changes nothing; a later change is picked up.
        assert "0 consultation" in app.test_cli_runner().invoke(args=["sync", "pull"]).output
        oc.patch_document(made[0]["cl_ref_key"], {"ВидОбращения": "ВОчередьНаКонсультацию",
                                                   "Конец": "0001-01-01T00:00:00"})
        app.test_cli_runner().invoke(args=["sync", "pull"])
        assert status_of(app, made[0]["consultation_id"])["status"] == "pending"
    finally:
        server.stop()


def test_an_update_of_something_else_does_not_reopen_what_1c_closed(hook_app):
    cid = make_consultation(hook_app, status="closed", onec_status="closed")
    client = hook_app.test_client()
    assigned = {**event(status="open", at=5000, name="conversation_updated"),
                "changed_attributes": [{"assignee_id": {"previous_value": None, "current_value": 3}}]}
    assert signed(client, assigned).get_json()["result"] == "unchanged"
    assert status_of(hook_app, cid)["status"] == "closed"


def test_a_1c_reread_does_not_undo_a_chatwoot_close(make_app):
    server, oc = start_onec()
    try:
        app = make_app(**upstream_config(None, oc), CHATWOOT_WEBHOOK_SECRET=WEBHOOK_SECRET)
        r = app.test_client().post("/api/consultations/create", headers=AUTH, json={
            "client": {"email": "reread@example.com"}, "consultation": {"comment": "Вопрос"}})
        c = r.get_json()["consultation"]
        with app.app_context(), db.connection_context():
            Consultation.update(cons_id="501").where(Consultation.id == c["consultation_id"]).execute()
        app.test_cli_runner().invoke(args=["sync", "pull"])
        assert status_of(app, c["consultation_id"])["status"] == "pending"
        signed(app.test_client(), event(cons_id="501", status="resolved"))
        assert status_of(app, c["consultation_id"])["status"] == "closed"
        oc.patch_document(c["cl_ref_key"], {"Тема": "уточнили тему"})  # 1C changes something else
        app.test_cli_runner().invoke(args=["sync", "pull"])  # and re-reads the margin
        assert status_of(app, c["consultation_id"])["status"] == "closed"
    finally:
        server.stop()
