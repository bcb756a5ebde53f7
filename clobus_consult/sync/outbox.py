"""The durable outbox: sync tasks are written with the consultation; this module pushes them upstream.

A task is worked on only by whoever claimed it: a conditional UPDATE that succeeds for exactly one worker
(thread, process or host) and gives it a lease. Exactly-once upstream comes from the clients, not from here:
Chatwoot is searched for our consultation_id and 1C is asked for our pre-generated Ref_Key whenever an earlier
attempt may have got through (``attempts > 1`` after the claim: a crash leaves no other trace).

1. ``claim``: pending, due, lease free → lease to me, attempts + 1 (row count 1 means it is mine).
2. ``push``: build plain values from the rows, call the upstream client (no transaction open meanwhile).
3. ``settle``: one short write transaction applies the outcome (ids onto the consultation, state, error,
   backoff) and, once both upstreams know the consultation, queues writing 1C's number into Chatwoot.
"""
import datetime as dt
import logging
import os
import random
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait

from peewee import fn

from ..db import db, write_transaction
from ..models import Client, Consultation, JobState, SyncTask, utcnow
from ..observability import UPSTREAM_ERRORS, UPSTREAM_LATENCY, request_id_var
from ..prepared import Prepared
from .breaker import Breaker
from .errors import SyncError

log = logging.getLogger(__name__)

NUMBER_TARGET = "chatwoot_number"  # follow-up: write 1C's number into the conversation (number_con)
BACKOFF_BASE, BACKOFF_CAP = 5.0, 15 * 60.0
COUNTERPARTY_NAMESPACE = uuid.UUID("6f1c7a52-31a4-4c1e-9a55-6c0b8f7e7070")
OWNER = f"{socket.gethostname()}:{os.getpid()}"


def configured_targets(config) -> dict[str, bool]:
    """Which upstreams this deployment talks to; an unconfigured one gets ``disabled`` tasks."""
    return {"chatwoot": bool(config.get("CHATWOOT_URL")), "onec": bool(config.get("ONEC_URL"))}


class Upstreams:
    """The clients and breakers of one app, built from its config (see ``init_app``)."""

    def __init__(self, config):
        from .chatwoot import ChatwootClient
        from .onec import OneCClient

        self.config = config
        self.clients = {}
        if config.get("CHATWOOT_URL"):
            self.clients["chatwoot"] = ChatwootClient(
                config["CHATWOOT_URL"], config.get("CHATWOOT_API_TOKEN") or "", config.get("CHATWOOT_ACCOUNT_ID") or 1,
                config.get("CHATWOOT_INBOX_ID") or 1, timeout=tuple(config["CHATWOOT_TIMEOUT"]))
        if config.get("ONEC_URL"):
            self.clients["onec"] = OneCClient(
                config["ONEC_URL"], config.get("ONEC_USER") or "", config.get("ONEC_PASSWORD") or "",
                counterparty_folder=config["ONEC_COUNTERPARTY_FOLDER"], tz=config["TIMEZONE"],
                timeout=tuple(config["ONEC_TIMEOUT"]))
        self.breakers = {name: Breaker() for name in ("chatwoot", "onec")}
        self.pool = ThreadPoolExecutor(max_workers=config["SYNC_THREADS"], thread_name_prefix="sync")
        # Intake's own threads: a new consultation never waits behind a backlog the drain is working through.
        self.inline_pool = ThreadPoolExecutor(max_workers=config["SYNC_THREADS"], thread_name_prefix="inline")

    def close(self) -> None:
        """Wait for pushes in flight to settle; nothing may use the database after it is closed."""
        for pool in (self.inline_pool, self.pool):
            pool.shutdown(wait=True)


# Upstream calls one push makes at most (Chatwoot: contact, filters, contact-inbox, conversations, create;
# 1C: find, get, create counterparty; get, create document): with the timeouts, the longest a push can take.
MAX_CALLS_PER_PUSH = {"CHATWOOT_TIMEOUT": 7, "ONEC_TIMEOUT": 5}


def init_app(app) -> None:
    app.extensions["clobus_upstreams"] = Upstreams(app.config)
    # Exactly-once rests on this: a lease must outlast the longest push, or another worker may take the task
    # over while the first is still creating the object upstream.
    for key, calls in MAX_CALLS_PER_PUSH.items():
        longest = calls * sum(app.config[key])
        if app.config["SYNC_LEASE_SECONDS"] < longest:
            log.warning("SYNC_LEASE_SECONDS=%s is shorter than the longest possible push (%s: %.0f s)",
                        app.config["SYNC_LEASE_SECONDS"], key, longest)


def upstreams(app) -> Upstreams:
    return app.extensions["clobus_upstreams"]


def _real(app):
    """The app object itself: work handed to pool threads must not hold a context-bound proxy."""
    return app._get_current_object() if hasattr(app, "_get_current_object") else app


def upstream_of(target: str) -> str:
    return "chatwoot" if target == NUMBER_TARGET else target


# -- 1. claim -----------------------------------------------------------------------------------------------
def _lease_free(now):
    return SyncTask.lease_until.is_null() | (SyncTask.lease_until < now)


def claim(task_id: str, lease_seconds: float) -> str | None:
    """Take the task if it is due and free; returns this claim's own token (None: someone else has it).

    Claimed by the thread that pushes, right before it pushes: a lease must not tick away in a queue.
    """
    now = utcnow()
    token = f"{OWNER}:{uuid.uuid4().hex[:12]}"
    with write_transaction():
        claimed = (SyncTask.update(lease_owner=token, lease_until=now + dt.timedelta(seconds=lease_seconds),
                                   attempts=SyncTask.attempts + 1, updated_at=now)
                   .where((SyncTask.id == task_id) & (SyncTask.state == "pending")
                          & (SyncTask.next_attempt_at <= now) & _lease_free(now))
                   .execute())
    return token if claimed == 1 else None


def _still_mine(task: SyncTask):
    """The condition every settle writes under: a worker whose lease was taken over changes nothing."""
    return (SyncTask.id == task.id) & (SyncTask.lease_owner == task.lease_owner) & (SyncTask.state == "pending")


def due_task_ids(limit: int, targets) -> list[str]:
    now = utcnow()
    query = (SyncTask.select(SyncTask.id)
             .where((SyncTask.state == "pending") & (SyncTask.next_attempt_at <= now) & _lease_free(now)
                    & SyncTask.target.in_(list(targets)))
             .order_by(SyncTask.next_attempt_at).limit(limit))
    return [row.id for row in query]


# -- 2. push ------------------------------------------------------------------------------------------------
def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value else None


def payload(consultation: Consultation, client: Client) -> dict:
    """The plain values the upstream clients take (they import no models)."""
    return {
        "consultation_id": consultation.id, "client_id": client.id, "email": client.email,
        "phone_number": client.phone_number, "org_inn": consultation.org_inn or client.org_inn,
        "lang": consultation.lang, "comment": consultation.comment, "topic": consultation.topic,
        "source": consultation.source, "importance": consultation.importance,
        "scheduled_at": _aware(consultation.scheduled_at), "created_at": _aware(consultation.created_at),
        "online_question_cat": consultation.online_question_cat, "online_question": consultation.online_question,
        "number": consultation.number,
    }


def push(ups: Upstreams, task: SyncTask, consultation: Consultation, client: Client) -> dict:
    """Do the upstream work for one claimed task; returns what to store. Raises SyncError."""
    look_first = task.attempts > 1 or task.uncertain
    c = payload(consultation, client)
    if task.target == "chatwoot":
        result = ups.clients["chatwoot"].push_consultation(
            c, contact_id=client.chatwoot_contact_id, source_id=client.chatwoot_source_id, look_first=look_first)
        return {**result, "number_sent": False}
    if task.target == NUMBER_TARGET:
        ups.clients["chatwoot"].merge_custom_attributes(consultation.cons_id, {"number_con": consultation.number})
        return {}
    onec = ups.clients["onec"]
    # The client's cached counterparty is its INN's: a consultation for another INN looks that one up.
    known = consultation.counterparty_ref_key or (client.cl_ref_key if c["org_inn"] == client.org_inn else None)
    counterparty = onec.ensure_counterparty(
        # Derived, so every retry and every worker asks 1C about the same key; from the INN when there is one,
        # so two clients of one company syncing at once collide in 1C (code 15) instead of making two.
        ref_key=str(uuid.uuid5(COUNTERPARTY_NAMESPACE, f"inn:{c['org_inn']}" if c["org_inn"] else client.id)),
        inn=c["org_inn"],
        name=client.email or client.phone_number or client.id[:8], email=client.email, phone=client.phone_number,
        known_key=known)
    call = onec.ensure_call(c, ref_key=task.external_id, counterparty_key=counterparty, look_first=look_first)
    return {**call, "counterparty": counterparty}


# -- 3. settle ----------------------------------------------------------------------------------------------
def backoff(attempts: int) -> float:
    """Exponential with full jitter, capped: retries of many tasks do not arrive at an upstream together."""
    return random.uniform(BACKOFF_BASE / 2, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(attempts - 1, 0)))


def _settle_success(task: SyncTask, result: dict) -> bool:
    now = utcnow()
    owned = SyncTask.update(state="done", lease_owner=None, lease_until=None, last_error=None, uncertain=False,
                            external_id=result.get("ref_key", task.external_id), updated_at=now).where(
        _still_mine(task)).execute()
    if not owned:
        return False
    consultation = Consultation.get_for_update(Consultation.id == task.consultation_id)
    if task.target == "chatwoot":
        consultation.cons_id = result["cons_id"]
        Client.update(chatwoot_contact_id=result["contact_id"], chatwoot_source_id=result["source_id"]).where(
            Client.id == consultation.client_id).execute()
    elif task.target == "onec":
        consultation.cl_ref_key, consultation.number = result["ref_key"], result["number"] or None
        (Client.update(cl_ref_key=result["counterparty"])
         .where((Client.id == consultation.client_id) & Client.cl_ref_key.is_null()
                & (Client.org_inn == consultation.org_inn if consultation.org_inn else Client.org_inn.is_null()))
         .execute())
    if task.target != NUMBER_TARGET:
        consultation.updated_at = now
        consultation.save()
    JobState.insert(name=f"last_success:{upstream_of(task.target)}", value=now.isoformat(), updated_at=now
                    ).on_conflict(conflict_target=[JobState.name],
                                  update={JobState.value: now.isoformat(), JobState.updated_at: now}).execute()
    # The second of the two upstreams to finish sees both ids and queues the number for Chatwoot.
    if task.target in ("chatwoot", "onec"):
        queue_number(consultation, task.request_id)
    return True


def queue_number(consultation: Consultation, request_id: str | None = None) -> None:
    """Once Chatwoot and 1C both know the consultation, 1C's number goes into the conversation (number_con).
    A number that changes later (1C pull) queues it again."""
    if not (consultation.cons_id and consultation.number):
        return
    now = utcnow()
    inserted = SyncTask.insert(id=str(uuid.uuid4()), consultation=consultation.id, target=NUMBER_TARGET,
                               state="pending", next_attempt_at=now, request_id=request_id, created_at=now,
                               updated_at=now).on_conflict_ignore().execute()
    if not inserted:
        (SyncTask.update(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
         .where((SyncTask.consultation == consultation.id) & (SyncTask.target == NUMBER_TARGET)
                & (SyncTask.state != "pending")).execute())


def _settle_failure(task: SyncTask, err: SyncError, max_attempts: int) -> str | None:
    now = utcnow()
    give_up = err.permanent or task.attempts >= max_attempts
    state = "failed" if give_up else "pending"
    owned = SyncTask.update(
        state=state, lease_owner=None, lease_until=None, last_error=str(err)[:2000],
        uncertain=SyncTask.uncertain | err.uncertain,
        next_attempt_at=now + dt.timedelta(seconds=0 if give_up else backoff(task.attempts)), updated_at=now,
    ).where(_still_mine(task)).execute()
    return state if owned else None


def claim_and_run(app, task_id: str) -> str | None:
    """Claim one task and, if it is ours, push it and store the outcome; returns its new state."""
    ups = upstreams(app)
    with db.connection_context():
        token = claim(task_id, app.config["SYNC_LEASE_SECONDS"])
        if token is None:
            return None
        task = SyncTask.get_by_id(task_id)
        consultation = Consultation.get_by_id(task.consultation_id)
        client = Client.get_by_id(consultation.client_id)
    task.lease_owner = token  # settles write only while this is still the owner
    return _run(app, ups, task, consultation, client)


def _run(app, ups: Upstreams, task: SyncTask, consultation: Consultation, client: Client) -> str | None:
    upstream = upstream_of(task.target)
    breaker = ups.breakers[upstream]
    request_id_var.set(task.request_id or "")
    extra = {"consultation_id": task.consultation_id, "target": task.target}
    started = time.perf_counter()
    try:
        result = push(ups, task, consultation, client)
    except SyncError as err:
        kind = "permanent" if err.permanent else "transient"
        UPSTREAM_LATENCY.labels(task.target, kind).observe(time.perf_counter() - started)
        UPSTREAM_ERRORS.labels(task.target, kind).inc()
        if not err.permanent:
            breaker.failure()
        with db.connection_context(), write_transaction():
            state = _settle_failure(task, err, app.config["SYNC_MAX_ATTEMPTS"])
        log.warning("sync %s %s: %s (attempt %d, now %s)", task.target, task.consultation_id, err, task.attempts,
                    state or "taken over by another worker", extra=extra)
        return state
    except Exception as exc:  # a bug, not an outage: keep the task, back off, say what happened
        log.exception("sync %s %s crashed", task.target, task.consultation_id, extra=extra)
        with db.connection_context(), write_transaction():
            return _settle_failure(task, SyncError(f"internal error: {type(exc).__name__}"),
                                   app.config["SYNC_MAX_ATTEMPTS"])
    UPSTREAM_LATENCY.labels(task.target, "ok").observe(time.perf_counter() - started)
    breaker.success()
    with db.connection_context(), write_transaction():
        settled = _settle_success(task, result)
    if not settled:  # our lease ran out mid-push and another worker owns the task now: its outcome stands
        log.warning("sync %s %s finished after its lease was taken over", task.target, task.consultation_id,
                    extra=extra)
        return None
    log.info("sync %s %s done", task.target, task.consultation_id, extra=extra)
    return "done"


# -- entry points -------------------------------------------------------------------------------------------
def sync_inline(app, consultation_id: str) -> None:
    """Try a new consultation's tasks right away, waiting at most SYNC_INLINE_BUDGET_SECONDS.

    A task still running when the budget is spent carries on in the background and settles itself; the
    response then says ``pending``. Upstreams whose breaker is open are not tried inline at all.
    """
    app = _real(app)
    ups = upstreams(app)
    if not ups.clients:
        return
    with db.connection_context():
        tasks = list(SyncTask.select(SyncTask.id, SyncTask.target).where(
            (SyncTask.consultation == consultation_id) & (SyncTask.state == "pending")))
    wanted = [t.id for t in tasks
              if upstream_of(t.target) in ups.clients and ups.breakers[upstream_of(t.target)].allows_inline()]
    futures = [ups.inline_pool.submit(claim_and_run, app, task_id) for task_id in wanted]
    if futures:
        wait(futures, timeout=app.config["SYNC_INLINE_BUDGET_SECONDS"])
    # The chatwoot number follow-up may have been queued by the second finisher: cheap, try it too.
    with db.connection_context():
        follow = [t.id for t in SyncTask.select(SyncTask.id).where(
            (SyncTask.consultation == consultation_id) & (SyncTask.target == NUMBER_TARGET)
            & (SyncTask.state == "pending"))]
    for task_id in follow:
        ups.inline_pool.submit(claim_and_run, app, task_id)


def drain(app, batch: int = 100, limit: int | None = None, progress=None) -> int:
    """Claim and push due tasks until none are left (or ``limit`` were handled); returns how many.

    ``progress(n)`` is called after each batch with the number of tasks it handled.
    """
    app = _real(app)
    ups = upstreams(app)
    if not ups.clients:
        return 0
    targets = [t for t in ("chatwoot", "onec", NUMBER_TARGET) if upstream_of(t) in ups.clients]
    handled = 0
    while limit is None or handled < limit:
        with db.connection_context():
            ids = due_task_ids(batch, targets)
        if not ids:
            return handled
        done = [f.result() for f in [ups.pool.submit(claim_and_run, app, i) for i in ids]]
        mine = sum(state is not None for state in done)
        handled += mine
        if progress is not None:
            progress(mine)
        if not mine:
            return handled  # every due task was someone else's: let them work
    return handled


TASK_COUNTS = Prepared(lambda p0, p1: SyncTask.select(SyncTask.target, SyncTask.state, fn.COUNT(SyncTask.id))
                       .where(SyncTask.state.in_([p0, p1])).group_by(SyncTask.target, SyncTask.state), arity=2)
LAST_SUCCESS = Prepared(lambda p0, p1: JobState.select(JobState.name, JobState.value)
                        .where(JobState.name.in_([p0, p1])), arity=2)


def health_summary(app) -> dict:
    """Per upstream: configured, pending and failed counts (indexed), last success, this process's breaker."""
    ups = upstreams(app)
    counts = {}
    for target, state, n in TASK_COUNTS.tuples("pending", "failed"):
        key = (upstream_of(target), state)
        counts[key] = counts.get(key, 0) + n
    last = {name.split(":", 1)[1]: value for name, value in
            LAST_SUCCESS.tuples("last_success:chatwoot", "last_success:onec")}
    return {
        target: {
            "configured": target in ups.clients, "pending": counts.get((target, "pending"), 0),
            "failed": counts.get((target, "failed"), 0),
            "last_success": dt.datetime.fromisoformat(last[target]) if target in last else None,
            "breaker": ups.breakers[target].state,
        }
        for target in ("chatwoot", "onec")
    }

