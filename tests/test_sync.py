"""Exactly-once sync to Chatwoot and 1C through the outbox, against the emulators over real HTTP."""
import datetime as dt
import threading
import time

import pytest

from clobus_consult.db import db
from clobus_consult.models import SyncTask, utcnow
from clobus_consult.sync import outbox

from .upstreams import both_emulators, upstream_config

BODY = {"client": {"email": "sync@example.com", "phone_number": "+998901234567", "org_inn": "123456789"},
        "consultation": {"comment": "Нужна консультация по НДС", "lang": "ru", "topic": "НДС"}, "source": "SITE"}


@pytest.fixture(scope="module")
def emulators():
    with both_emulators() as handles:
        yield handles


@pytest.fixture
def upstream(emulators):
    cw, oc = emulators
    cw.reset()
    oc.reset()
    return cw, oc


@pytest.fixture
def sync_app(make_app, upstream):
    cw, oc = upstream
    return make_app(**upstream_config(cw, oc), SYNC_INLINE_BUDGET_SECONDS=3, CHATWOOT_TIMEOUT=(1, 1.5),
                    ONEC_TIMEOUT=(1, 1.5))


def create(app, body=BODY, comment=None):
    if comment:
        body = {**body, "consultation": {**body["consultation"], "comment": comment}}
    r = app.test_client().post("/api/consultations/create", json=body,
                               headers={"Authorization": f"Bearer {app.config['API_TOKENS']}"})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["consultation"]


def ticket(app, consultation_id):
    r = app.test_client().get(f"/api/tickets/{consultation_id}",
                              headers={"Authorization": f"Bearer {app.config['API_TOKENS']}"})
    return r.get_json()


def make_due(app):
    """Skip the backoff wait: the test plays the clock."""
    with app.app_context(), db.connection_context():
        SyncTask.update(next_attempt_at=utcnow() - dt.timedelta(seconds=1)).where(
            SyncTask.state == "pending").execute()


def drain(app):
    make_due(app)
    with app.app_context():
        outbox.drain(app)
        outbox.upstreams(app).pool.submit(lambda: None).result()


def settle(app, consultation_id, timeout=10):
    """Wait until no task of the consultation is running (inline work may finish after the response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context(), db.connection_context():
            busy = SyncTask.select().where((SyncTask.consultation == consultation_id)
                                           & SyncTask.lease_owner.is_null(False)).exists()
        if not busy:
            return
        time.sleep(0.05)
    raise TimeoutError("sync did not settle")


def test_happy_path_fills_ids_inline_on_both_upstreams(sync_app, upstream):
    cw, oc = upstream
    c = create(sync_app)
    assert c["sync"] == {"chatwoot": {"state": "done", "error": None}, "onec": {"state": "done", "error": None}}
    assert c["cons_id"] and c["cl_ref_key"] and c["number"]
    conv = cw.conversations_of(c["consultation_id"])
    assert len(conv) == 1 and str(conv[0]["id"]) == c["cons_id"]
    assert conv[0]["custom_attributes"]["lang"] == "ru" and conv[0]["custom_attributes"]["topic"] == "НДС"
    docs = oc.documents()
    assert len(docs) == 1 and docs[0]["Ref_Key"] == c["cl_ref_key"] and docs[0]["Number"] == c["number"]
    assert docs[0]["Описание"] == "Нужна консультация по НДС"
    assert docs[0]["ВидОбращения"] == "ВОчередьНаКонсультацию"
    assert [cp["ИНН"].strip() for cp in oc.counterparties() if (cp.get("ИНН") or "").strip()] == ["123456789"]
    settle(sync_app, c["consultation_id"])
    assert ticket(sync_app, c["consultation_id"])["cons_id"] == c["cons_id"]
    # Once both are known, 1C's number lands in the conversation (read-merge-write keeps the rest).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        attrs = cw.conversations_of(c["consultation_id"])[0]["custom_attributes"]
        if attrs.get("number_con"):
            break
        drain(sync_app)
        time.sleep(0.05)
    assert attrs["number_con"] == c["number"] and attrs["consultation_id"] == c["consultation_id"]


def test_second_consultation_reuses_contact_and_counterparty(sync_app, upstream):
    cw, oc = upstream
    create(sync_app)
    create(sync_app, comment="Второй вопрос")
    assert len(cw.state()["contacts"]) == 1
    assert len(oc.counterparties()) == 2  # the CLOBUS folder and the one counterparty
    assert len(oc.documents()) == 2


@pytest.mark.parametrize("which", ["chatwoot", "onec"])
def test_outage_answers_fast_with_pending_then_syncs_after_recovery(sync_app, upstream, which):
    cw, oc = upstream
    down = cw if which == "chatwoot" else oc
    down.fault("503")
    started = time.monotonic()
    c = create(sync_app)
    assert time.monotonic() - started < 3
    assert c["sync"][which]["state"] == "pending" and "503" in c["sync"][which]["error"]
    other = "onec" if which == "chatwoot" else "chatwoot"
    assert c["sync"][other]["state"] == "done"
    down.clear()
    drain(sync_app)
    t = ticket(sync_app, c["consultation_id"])
    assert t["sync"][which] == {"state": "done", "error": None}
    assert t["cons_id"] and t["number"]
    assert len(cw.conversations_of(c["consultation_id"])) == 1 and len(oc.documents()) == 1


@pytest.mark.parametrize("which", ["chatwoot", "onec"])
def test_hanging_upstream_does_not_hold_intake(sync_app, upstream, which):
    cw, oc = upstream
    down = cw if which == "chatwoot" else oc
    down.fault("hang", delay=4)
    started = time.monotonic()
    c = create(sync_app)
    elapsed = time.monotonic() - started
    assert elapsed < sync_app.config["SYNC_INLINE_BUDGET_SECONDS"] + 1
    assert c["sync"][which]["state"] == "pending"
    down.clear()
    settle(sync_app, c["consultation_id"])
    drain(sync_app)
    t = ticket(sync_app, c["consultation_id"])
    assert t["sync"][which]["state"] == "done"
    assert len(cw.conversations_of(c["consultation_id"])) == 1 and len(oc.documents()) == 1


def test_breaker_skips_inline_attempts_during_an_outage(sync_app, upstream):
    cw, _ = upstream
    cw.fault("hang", delay=3)
    for i in range(3):
        create(sync_app, comment=f"Вопрос {i}")
    calls_before = cw.stats().get("total", 0)
    started = time.monotonic()
    c = create(sync_app, comment="После трёх отказов")
    assert time.monotonic() - started < 1.0
    assert c["sync"]["chatwoot"]["state"] == "pending"
    assert cw.stats().get("total", 0) == calls_before  # not even tried
    health = sync_app.test_client().get("/api/health").get_json()["upstreams"]["chatwoot"]
    assert health["breaker"] == "open" and health["pending"] >= 4
    cw.clear()


@pytest.mark.parametrize("which", ["chatwoot", "onec"])
def test_response_lost_after_commit_makes_one_object_not_two(sync_app, upstream, which):
    cw, oc = upstream
    if which == "chatwoot":
        cw.fault("lose_response", match=cw.CONVERSATIONS, times=1)
    else:
        oc.fault("lose_response", match=oc.DOCUMENTS, times=1)
    c = create(sync_app)
    assert c["sync"][which]["state"] == "pending"
    drain(sync_app)
    t = ticket(sync_app, c["consultation_id"])
    assert t["sync"][which]["state"] == "done"
    if which == "chatwoot":
        convs = cw.conversations_of(c["consultation_id"])
        assert len(convs) == 1 and str(convs[0]["id"]) == t["cons_id"]
    else:
        docs = oc.documents()
        assert len(docs) == 1 and docs[0]["Ref_Key"] == t["cl_ref_key"]


def test_fourth_call_of_the_day_fails_at_once_with_1c_message(sync_app, upstream):
    _, oc = upstream
    for i in range(3):
        assert create(sync_app, comment=f"Вопрос {i}")["sync"]["onec"]["state"] == "done"
    posts_before = oc.stats().get("POST /<publication>/odata/standard.odata/<path:resource>", 0)
    c = create(sync_app, comment="Четвёртый")
    assert c["sync"]["onec"]["state"] == "failed"
    assert "3" in c["sync"]["onec"]["error"] and any("а" <= ch <= "я" for ch in c["sync"]["onec"]["error"])
    assert c["sync"]["chatwoot"]["state"] == "done"
    drain(sync_app)
    drain(sync_app)
    posts_after = oc.stats().get("POST /<publication>/odata/standard.odata/<path:resource>", 0)
    assert posts_after == posts_before + 1  # the one rejected POST, never repeated
    assert len(oc.documents()) == 3


def test_transient_failures_back_off_then_fail_after_max_attempts(make_app, upstream):
    cw, oc = upstream
    app = make_app(**upstream_config(cw, None), SYNC_MAX_ATTEMPTS=3, SYNC_INLINE_BUDGET_SECONDS=2)
    cw.fault("503")
    c = create(app)
    with app.app_context(), db.connection_context():
        task = SyncTask.get((SyncTask.consultation == c["consultation_id"]) & (SyncTask.target == "chatwoot"))
        assert task.attempts == 1 and task.next_attempt_at > utcnow()  # backing off
    drain(app)
    drain(app)
    t = ticket(app, c["consultation_id"])
    assert t["sync"]["chatwoot"]["state"] == "failed" and "503" in t["sync"]["chatwoot"]["error"]
    assert t["sync"]["onec"]["state"] == "disabled"
    cw.clear()
    result = app.test_cli_runner().invoke(args=["sync", "retry", "--all-failed"])
    assert "requeued 1" in result.output
    drain(app)
    assert ticket(app, c["consultation_id"])["sync"]["chatwoot"]["state"] == "done"


def test_permanent_upstream_error_fails_at_once(make_app, upstream):
    cw, _ = upstream
    config = upstream_config(cw, None)
    app = make_app(**{**config, "CHATWOOT_API_TOKEN": "wrong-token"})
    c = create(app)
    assert c["sync"]["chatwoot"]["state"] == "failed"
    assert "401" in c["sync"]["chatwoot"]["error"] and "wrong-token" not in c["sync"]["chatwoot"]["error"]


def test_two_workers_draining_one_outbox_push_each_task_once(make_app, upstream):
    cw, oc = upstream
    config = upstream_config(cw, oc)
    intake = make_app(**config, SYNC_INLINE_BUDGET_SECONDS=0)
    cw.fault("503")
    oc.fault("503")
    # Twelve clients: 1C allows a counterparty only three calls a day.
    made = [create(intake, {**BODY, "client": {"email": f"q{i}@example.com"}})["consultation_id"]
            for i in range(12)]
    cw.clear()
    oc.clear()
    make_due(intake)
    with intake.app_context():
        workers = [threading.Thread(target=outbox.drain, args=(intake,)) for _ in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    for cid in made:
        assert len(cw.conversations_of(cid)) == 1
    assert len({d["Ref_Key"] for d in oc.documents()}) == len(oc.documents()) == 12


def test_metrics_health_and_cli_report_a_consultations_sync(sync_app, upstream):
    c = create(sync_app)
    settle(sync_app, c["consultation_id"])
    metrics = sync_app.test_client().get("/metrics").get_data(as_text=True)
    assert 'clobus_sync_tasks{state="done",target="chatwoot"} 1.0' in metrics
    assert 'clobus_sync_tasks{state="done",target="onec"} 1.0' in metrics
    assert 'clobus_upstream_push_duration_seconds_count{outcome="ok",target="onec"}' in metrics
    health = sync_app.test_client().get("/api/health").get_json()["upstreams"]
    assert health["chatwoot"]["configured"] and health["chatwoot"]["last_success"]
    assert health["onec"]["pending"] == 0 and health["onec"]["failed"] == 0
    out = sync_app.test_cli_runner().invoke(args=["sync", "status"]).output
    assert any(line.split()[:3] == ["onec", "done", "1"] for line in out.splitlines()), out


def test_replay_while_the_first_request_is_still_syncing_is_409_then_the_same_answer(sync_app, upstream):
    cw, _ = upstream
    cw.fault("slow", match=cw.CONVERSATIONS, times=1, delay=1.5)
    headers = {"Authorization": f"Bearer {sync_app.config['API_TOKENS']}", "Idempotency-Key": "inflight-1"}
    first = {}
    worker = threading.Thread(target=lambda: first.update(r=sync_app.test_client().post(
        "/api/consultations/create", json=BODY, headers=headers)))
    worker.start()
    time.sleep(0.5)
    early = sync_app.test_client().post("/api/consultations/create", json=BODY, headers=headers)
    worker.join()
    assert early.status_code == 409 and int(early.headers["Retry-After"]) >= 1
    assert first["r"].status_code == 200
    late = sync_app.test_client().post("/api/consultations/create", json=BODY, headers=headers)
    assert late.status_code == 200 and late.get_json() == first["r"].get_json()
    assert len(cw.conversations_of(late.get_json()["consultation"]["consultation_id"])) == 1
