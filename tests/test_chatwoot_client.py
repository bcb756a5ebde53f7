"""The Chatwoot client against the Chatwoot emulator, both over real HTTP on 127.0.0.1."""
import hashlib
import hmac
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from flask import Flask, request
from werkzeug.serving import make_server

from clobus_consult.emulators.chatwoot import UnderscoreHeadersHandler, create_app
from clobus_consult.emulators.server import ServerThread
from clobus_consult.sync.chatwoot import ChatwootClient
from clobus_consult.sync.errors import SyncError

TOKEN = "tok-5f1d2c9e-very-secret"
API = "/api/v1/accounts/1"
CONVERSATIONS = f"POST {API}/conversations"


@pytest.fixture(scope="module")
def emulator_server():
    # One server per module: ServerThread.stop() waits out serve_forever's 0.5 s poll.
    with ServerThread(create_app(api_token=TOKEN, account_id=1, inbox_id=1)) as srv:
        yield srv


@pytest.fixture
def emulator(emulator_server):
    requests.post(f"{emulator_server.url}/__emulator__/reset", timeout=2).raise_for_status()
    return emulator_server


@pytest.fixture
def client(emulator):
    cw = ChatwootClient(emulator.url, TOKEN, 1, 1, timeout=(1.0, 2.0))
    yield cw
    cw.close()


def consultation(**over) -> dict:
    c = {"consultation_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4()), "email": "Ivan@Example.uz",
         "phone_number": "+998901234567", "org_inn": "301234567", "lang": "ru",
         "comment": "Нужна помощь с ЭДО",
         "topic": "ЭДО", "source": "SITE", "importance": 2, "scheduled_at": None,
         "created_at": datetime(2026, 3, 1, 9, 30, tzinfo=UTC), "online_question_cat": None,
         "online_question": None}
    c.update(over)
    return c


def state(srv) -> dict:
    return requests.get(f"{srv.url}/__emulator__/state", timeout=2).json()


def fault(srv, mode, **kw) -> None:
    requests.post(f"{srv.url}/__emulator__/faults", json={"mode": mode, **kw}, timeout=2).raise_for_status()


def api(srv, method, path, token=TOKEN, **kw) -> requests.Response:
    headers = {"Api-Access-Token": token} if token else {}
    return requests.request(method, f"{srv.url}{API}{path}", headers=headers, timeout=2, **kw)


def convs_for(srv, consultation_id) -> list[dict]:
    return [cv for cv in state(srv)["conversations"]
            if cv["custom_attributes"].get("consultation_id") == consultation_id]


# -- the client ---------------------------------------------------------------------------------------------
def test_push_creates_one_conversation_with_attributes_and_first_message(emulator, client):
    c = consultation(scheduled_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    out = client.push_consultation(c)

    [conv] = state(emulator)["conversations"]
    assert out == {"cons_id": str(conv["id"]), "contact_id": conv["meta"]["sender"]["id"],
                   "source_id": f"clobus-{conv['meta']['sender']['id']}"}
    assert out["cons_id"] == "1"
    assert conv["status"] == "open" and conv["inbox_id"] == 1
    assert conv["custom_attributes"] == {
        "consultation_id": c["consultation_id"], "client_id": c["client_id"], "lang": "ru", "topic": "ЭДО",
        "source": "SITE", "org_inn": "301234567", "scheduled_date": "2026-03-02T10:00:00+00:00"}
    [msg] = conv["messages"]
    assert msg["message_type"] == 0 and msg["sender"]["type"] == "contact"
    assert msg["content"] == "Тема: ЭДО\n\nНужна помощь с ЭДО"
    [contact] = state(emulator)["contacts"]
    assert contact["identifier"] == c["client_id"] and contact["email"] == "ivan@example.uz"
    assert contact["custom_attributes"] == {"org_inn": "301234567"}


def test_second_consultation_with_cached_contact_reuses_contact_inbox(emulator, client):
    first = client.push_consultation(consultation(client_id="c1" + "0" * 34))
    second = client.push_consultation(consultation(client_id="c1" + "0" * 34, topic=None, comment="ещё"),
                                      contact_id=first["contact_id"], source_id=first["source_id"])
    assert second["contact_id"] == first["contact_id"] and second["cons_id"] == "2"
    s = state(emulator)
    assert len(s["contacts"]) == 1 and len(s["contact_inboxes"]) == 1 and len(s["conversations"]) == 2
    assert s["conversations"][1]["messages"][0]["content"] == "ещё"
    assert "topic" not in s["conversations"][1]["custom_attributes"]


def test_retry_after_lost_response_finds_the_conversation(emulator, client):
    c = consultation()
    fault(emulator, "lose_response", match=CONVERSATIONS, times=1)
    with pytest.raises(SyncError) as err:
        client.push_consultation(c)
    assert err.value.uncertain and not err.value.permanent
    assert len(convs_for(emulator, c["consultation_id"])) == 1  # it was created upstream

    out = client.push_consultation(c, look_first=True)
    [conv] = convs_for(emulator, c["consultation_id"])
    assert out["cons_id"] == str(conv["id"])
    assert len(state(emulator)["conversations"]) == 1


def test_retry_after_lost_contact_response_reuses_contact(emulator, client):
    c = consultation()
    fault(emulator, "lose_response", match=f"POST {API}/contacts", times=1)
    with pytest.raises(SyncError):
        client.push_consultation(c)
    out = client.push_consultation(c)
    s = state(emulator)
    assert len(s["contacts"]) == 1 and len(s["contact_inboxes"]) == 1 and len(s["conversations"]) == 1
    assert out["contact_id"] == s["contacts"][0]["id"]


def test_existing_contact_with_same_identifier_is_reused(emulator, client):
    c = consultation()
    made = api(emulator, "POST", "/contacts", json={"name": "Manual", "identifier": c["client_id"]}).json()
    out = client.push_consultation(c)
    assert out["contact_id"] == made["payload"]["contact"]["id"]
    assert len(state(emulator)["contacts"]) == 1


def test_contact_found_by_email_taken_under_another_identifier(emulator, client):
    other = api(emulator, "POST", "/contacts",
                json={"name": "Old", "identifier": "legacy-42", "email": "IVAN@example.uz"}).json()
    c = consultation(phone_number=None)
    out = client.push_consultation(c)
    assert out["contact_id"] == other["payload"]["contact"]["id"]
    assert len(state(emulator)["contacts"]) == 1
    # a second push of another consultation goes to the same contact without any error
    assert client.push_consultation(consultation(client_id=c["client_id"], phone_number=None))["contact_id"] \
        == out["contact_id"]


def test_contact_found_by_phone(emulator, client):
    other = api(emulator, "POST", "/contacts", json={"name": "P", "phone_number": "+998901234567"}).json()
    out = client.push_consultation(consultation(email=None))
    assert out["contact_id"] == other["payload"]["contact"]["id"]


def test_stale_cached_contact_is_resolved_again(emulator, client):
    c = consultation()
    out = client.push_consultation(c, contact_id=999, source_id="clobus-999")
    assert out["contact_id"] != 999 and out["source_id"] == f"clobus-{out['contact_id']}"
    assert len(state(emulator)["conversations"]) == 1


def test_merge_custom_attributes_keeps_existing_keys(emulator, client):
    c = consultation()
    cons_id = client.push_consultation(c)["cons_id"]
    merged = client.merge_custom_attributes(cons_id, {"number_con": "000123"})
    assert merged["number_con"] == "000123" and merged["consultation_id"] == c["consultation_id"]
    assert client.get_conversation(cons_id)["custom_attributes"] == merged
    assert merged.keys() >= {"client_id", "lang", "topic", "source", "org_inn"}


def test_503_is_transient(emulator, client):
    fault(emulator, "503", times=1)
    with pytest.raises(SyncError) as err:
        client.get_conversation("1")
    assert err.value.status == 503 and not err.value.permanent and not err.value.uncertain

    fault(emulator, "503", match=CONVERSATIONS, times=1)
    with pytest.raises(SyncError) as err:
        client.push_consultation(consultation())
    assert err.value.status == 503 and not err.value.permanent and err.value.uncertain


def test_hang_times_out_as_transient_and_uncertain(emulator):
    c = consultation()
    quick = ChatwootClient(emulator.url, TOKEN, 1, 1, timeout=(1.0, 0.3))
    fault(emulator, "hang", match=CONVERSATIONS, times=1, delay=0.8)
    started = time.monotonic()
    with pytest.raises(SyncError) as err:
        quick.push_consultation(c)
    assert time.monotonic() - started < 0.8
    assert err.value.uncertain and not err.value.permanent and err.value.status is None
    deadline = time.monotonic() + 3
    while not convs_for(emulator, c["consultation_id"]) and time.monotonic() < deadline:
        time.sleep(0.05)  # the hung request still completes upstream
    quick.push_consultation(c, look_first=True)
    assert len(convs_for(emulator, c["consultation_id"])) == 1


def test_connection_refused_is_transient_and_certain():
    with socket.socket() as sock:  # a port nobody listens on any more
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(SyncError) as err:
        ChatwootClient(url, TOKEN, 1, 1, timeout=(0.5, 0.5)).push_consultation(consultation())
    assert not err.value.permanent and not err.value.uncertain and TOKEN not in str(err.value)


def test_bad_token_is_permanent_and_not_leaked(emulator):
    bad = "wrong-" + TOKEN
    with pytest.raises(SyncError) as err:
        ChatwootClient(emulator.url, bad, 1, 1).push_consultation(consultation())
    assert err.value.permanent and err.value.status == 401
    assert "Invalid Access Token" in str(err.value)
    assert bad not in str(err.value) and TOKEN not in str(err.value)


def test_unknown_conversation_is_permanent_404(client):
    with pytest.raises(SyncError) as err:
        client.merge_custom_attributes("424242", {"number_con": "1"})
    assert err.value.permanent and err.value.status == 404
    assert "Resource could not be found" in str(err.value) and TOKEN not in str(err.value)


def test_invalid_phone_is_permanent_with_chatwoot_message(client):
    with pytest.raises(SyncError) as err:
        client.push_consultation(consultation(phone_number="998901234567"))
    assert err.value.permanent and "Phone number should be in e164 format" in str(err.value)


# -- webhooks -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def receiver_server():
    got, cond = [], threading.Condition()
    app = Flask(__name__)

    @app.post("/hook")
    def hook():
        with cond:
            got.append({"headers": dict(request.headers), "raw": request.get_data(),
                        "args": request.args.to_dict(), "json": request.get_json()})
            cond.notify_all()
        return "", 200

    def wait_for(n):
        with cond:
            cond.wait_for(lambda: len(got) >= n, timeout=3)
        return list(got)

    with ServerThread(app) as srv:
        srv.wait_for, srv.got = wait_for, got
        yield srv


@pytest.fixture
def receiver(receiver_server):
    receiver_server.got.clear()
    return receiver_server


def test_status_change_fires_two_signed_webhooks(receiver):
    secret = "whsec-test"
    app = create_app(api_token=TOKEN, webhook_url=f"{receiver.url}/hook", webhook_secret=secret)
    with ServerThread(app) as emu:
        c = consultation()
        cons_id = ChatwootClient(emu.url, TOKEN, 1, 1).push_consultation(c)["cons_id"]
        receiver.wait_for(1)
        r = requests.post(f"{emu.url}/__emulator__/conversations/{cons_id}/status",
                          json={"status": "resolved"}, timeout=2)
        assert r.json() == {"id": int(cons_id), "status": "resolved"}
        got = receiver.wait_for(3)

    assert sorted(d["json"]["event"] for d in got) == [
        "conversation_created", "conversation_status_changed", "conversation_updated"]
    for d in got:
        ts, sig = d["headers"]["X-Chatwoot-Timestamp"], d["headers"]["X-Chatwoot-Signature"]
        expected = hmac.new(secret.encode(), f"{ts}.".encode() + d["raw"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(sig, f"sha256={expected}")
        assert abs(int(ts) - time.time()) < 10 and uuid.UUID(d["headers"]["X-Chatwoot-Delivery"])
        assert d["json"]["id"] == int(cons_id) and "data" not in d["json"]
        assert d["json"]["custom_attributes"]["consultation_id"] == c["consultation_id"]
    assert len({d["headers"]["X-Chatwoot-Delivery"] for d in got}) == 3
    for d in got:
        if d["json"]["event"] != "conversation_created":
            assert d["json"]["status"] == "resolved"
            assert d["json"]["changed_attributes"] == [
                {"status": {"previous_value": "open", "current_value": "resolved"}}]


def test_unsigned_webhook_carries_url_token(receiver):
    app = create_app(api_token=TOKEN, webhook_url=f"{receiver.url}/hook", webhook_token="url-tok")
    with ServerThread(app) as emu:
        ChatwootClient(emu.url, TOKEN, 1, 1).push_consultation(consultation())
        api(emu, "POST", "/conversations/1/toggle_status", json={"status": "resolved"})
        got = receiver.wait_for(3)
    assert len(got) == 3
    assert all(d["args"] == {"token": "url-tok"} and "X-Chatwoot-Signature" not in d["headers"] for d in got)


# -- the emulator's Chatwoot behaviour ----------------------------------------------------------------------
def test_auth_failures_have_chatwoot_bodies(emulator):
    assert api(emulator, "GET", "/conversations/1", token=None).json() == {
        "errors": ["You need to sign in or sign up before continuing."]}
    r = api(emulator, "GET", "/conversations/1", token="nope")
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Access Token"})
    r = requests.get(f"{emulator.url}/api/v1/accounts/2/conversations/1", headers={"Api-Access-Token": TOKEN},
                     timeout=2)
    assert (r.status_code, r.json()) == (401, {"error": "You are not authorized to access this account"})
    r = api(emulator, "GET", "/conversations/77")
    assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})


def test_underscore_header_needs_a_server_that_keeps_it(emulator):
    # ServerThread's plain werkzeug drops underscore headers, as nginx does by default ...
    r = requests.get(f"{emulator.url}{API}/contacts/1", headers={"api_access_token": TOKEN}, timeout=2)
    assert r.status_code == 401
    # ... the standalone emulator's handler keeps them, as Chatwoot's Puma does.
    app = create_app(api_token=TOKEN)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=UnderscoreHeadersHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        r = requests.get(f"http://127.0.0.1:{server.server_port}{API}/contacts/1",
                         headers={"api_access_token": TOKEN}, timeout=2)
        assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})
    finally:
        server.shutdown()
        server.server_close()


def test_contact_validation_bodies(emulator):
    r = api(emulator, "POST", "/contacts", json={"name": "A", "email": "A@x.uz", "identifier": "id-1"})
    assert r.status_code == 200 and r.json()["payload"]["contact_inbox"] == {"inbox": None, "source_id": None}
    r = api(emulator, "POST", "/contacts", json={"name": "B", "email": "a@X.UZ", "identifier": "id-1"})
    assert (r.status_code, r.json()) == (422, {
        "message": "Email has already been taken, Identifier has already been taken",
        "attributes": ["email", "identifier"]})
    r = api(emulator, "POST", "/contacts", json={"name": "x" * 256, "phone_number": "8901"})
    assert r.json() == {"message": "Name is too long (maximum is 255 characters), "
                                   "Phone number should be in e164 format",
                        "attributes": ["name", "phone_number"]}


def test_contact_create_with_inbox_and_filter(emulator):
    made = api(emulator, "POST", "/contacts", json={"name": "A", "identifier": "AbC", "inbox_id": 1}).json()
    source_id = made["payload"]["contact_inbox"]["source_id"]
    assert uuid.UUID(source_id) and made["payload"]["contact"]["contact_inboxes"][0]["source_id"] == source_id
    api(emulator, "POST", "/contacts", json={"name": "nobody"})  # no email/phone/identifier: never filtered

    def find(key, value):
        cond = {"attribute_key": key, "filter_operator": "equal_to", "values": [value],
                "query_operator": None}
        return api(emulator, "POST", "/contacts/filter", json={"payload": [cond]}).json()

    body = find("identifier", "abc")
    assert body["meta"] == {"count": 1, "current_page": 1} and body["payload"][0]["identifier"] == "AbC"
    assert find("identifier", "ab")["payload"] == []
    assert find("phone_number", "+998900000000")["meta"]["count"] == 0


def test_contact_inboxes_idempotent_and_owned(emulator):
    a = api(emulator, "POST", "/contacts", json={"identifier": "a"}).json()["payload"]["contact"]["id"]
    b = api(emulator, "POST", "/contacts", json={"identifier": "b"}).json()["payload"]["contact"]["id"]
    first = api(emulator, "POST", f"/contacts/{a}/contact_inboxes", json={"inbox_id": 1, "source_id": "s-a"})
    again = api(emulator, "POST", f"/contacts/{a}/contact_inboxes", json={"inbox_id": 1, "source_id": "s-a"})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert first.json()["source_id"] == "s-a" and first.json()["inbox"]["id"] == 1
    assert api(emulator, "POST", f"/contacts/{b}/contact_inboxes",
               json={"inbox_id": 1, "source_id": "s-a"}).status_code == 422
    assert api(emulator, "POST", f"/contacts/{b}/contact_inboxes", json={"inbox_id": 9}).status_code == 404
    assert len(state(emulator)["contact_inboxes"]) == 1


def test_conversation_without_source_id_makes_new_contact_inbox_each_time(emulator):
    cid = api(emulator, "POST", "/contacts", json={"identifier": "q"}).json()["payload"]["contact"]["id"]
    one = api(emulator, "POST", "/conversations", json={"inbox_id": 1, "contact_id": cid}).json()
    two = api(emulator, "POST", "/conversations", json={"inbox_id": 1, "contact_id": cid}).json()
    assert one["contact_inbox"]["source_id"] != two["contact_inbox"]["source_id"]
    assert len(state(emulator)["contact_inboxes"]) == 2 and [one["id"], two["id"]] == [1, 2]
    for key in ("account_id", "uuid", "labels", "priority", "meta", "created_at", "timestamp",
                "last_activity_at", "unread_count"):
        assert key in one
    assert one["messages"] == [] and one["meta"]["sender"]["id"] == cid


def test_conversation_source_id_rules(emulator):
    a = api(emulator, "POST", "/contacts", json={"identifier": "a", "inbox_id": 1, "source_id": "src-a"})
    a = a.json()["payload"]["contact"]["id"]
    r = api(emulator, "POST", "/contacts", json={"identifier": "b", "inbox_id": 1, "source_id": "src-a"})
    assert r.status_code == 422 and len(state(emulator)["contacts"]) == 1
    b = api(emulator, "POST", "/contacts", json={"identifier": "b"}).json()["payload"]["contact"]["id"]
    r = api(emulator, "POST", "/conversations", json={"source_id": "src-a", "inbox_id": 1, "contact_id": b})
    assert (r.status_code, r.json()) == (422, {"error": "source_id should be unique"})
    r = api(emulator, "POST", "/conversations", json={"source_id": "missing"})
    assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})
    r = api(emulator, "POST", "/conversations", json={"source_id": "src-a", "message": {"content": "hi"}})
    assert r.status_code == 200 and r.json()["meta"]["sender"]["id"] == a
    assert r.json()["messages"][0]["message_type"] == 1  # default is outgoing


def test_custom_attributes_replace_and_limits(emulator, client):
    cons_id = client.push_consultation(consultation())["cons_id"]
    r = api(emulator, "POST", f"/conversations/{cons_id}/custom_attributes",
            json={"custom_attributes": {"x": 1}})
    assert r.json() == {"custom_attributes": {"x": 1}}
    assert client.get_conversation(cons_id)["custom_attributes"] == {"x": 1}
    r = api(emulator, "POST", f"/conversations/{cons_id}/custom_attributes",
            json={"custom_attributes": {"x": "y" * 1501}})
    assert r.status_code == 422 and r.json()["attributes"] == ["custom_attributes"]


def test_toggle_status_messages_and_contact_conversations(emulator, client):
    c = consultation()
    out = client.push_consultation(c)
    r = api(emulator, "POST", f"/conversations/{out['cons_id']}/toggle_status", json={"status": "resolved"})
    assert r.json() == {"meta": {}, "payload": {"success": True, "conversation_id": 1,
                                                "current_status": "resolved", "snoozed_until": None}}
    m = api(emulator, "POST", f"/conversations/{out['cons_id']}/messages",
            json={"content": "Ответ", "message_type": "outgoing", "private": False}).json()
    assert m["message_type"] == 1 and m["conversation_id"] == 1 and isinstance(m["created_at"], int)
    bogus = api(emulator, "POST", "/conversations/1/messages", json={"message_type": "bogus"})
    assert bogus.status_code == 422
    client.push_consultation(consultation(client_id=c["client_id"]))
    listed = api(emulator, "GET", f"/contacts/{out['contact_id']}/conversations").json()["payload"]
    assert [cv["id"] for cv in listed] == [2, 1]
    assert len(listed) == 2 and listed[0]["messages"]  # only the last message in list shapes


def test_reset_clears_state_and_faults(emulator, client):
    client.push_consultation(consultation())
    fault(emulator, "503")
    requests.post(f"{emulator.url}/__emulator__/reset", timeout=2)
    assert state(emulator) == {"contacts": [], "contact_inboxes": [], "conversations": []}
    assert client.push_consultation(consultation())["cons_id"] == "1"


def test_scheduled_date_plain_date_and_no_topic(emulator, client):
    when = datetime.now(UTC) + timedelta(days=1)
    c = consultation(topic=None, scheduled_at=when.date(), org_inn=None, email=None)
    client.push_consultation(c)
    [conv] = state(emulator)["conversations"]
    assert conv["custom_attributes"]["scheduled_date"] == when.date().isoformat()
    assert "org_inn" not in conv["custom_attributes"] and conv["messages"][0]["content"] == c["comment"]
    assert state(emulator)["contacts"][0]["name"] == "+998901234567"
