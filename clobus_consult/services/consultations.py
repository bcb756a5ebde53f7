"""Creating consultations: client resolution, duplicate absorption and the outbox rows, in one transaction."""
import datetime as dt
import hashlib
import json
import uuid

from ..db import write_transaction
from ..fields import canonical_uuid
from ..models import Client, Consultation, IdempotencyRecord, SyncTask, utcnow
from ..prepared import Prepared, insert_rows
from . import ServiceError, retry_on_conflict
from .clients import resolve_client

BY_FINGERPRINT = Prepared(lambda p: Consultation.select(
    Consultation.id, Consultation.status, Consultation.created_at).where(Consultation.active_fingerprint == p))
BY_ID = Prepared(lambda p: Consultation.select().where(Consultation.id == p))
BY_CONS_ID = Prepared(lambda p: Consultation.select().where(Consultation.cons_id == p))
TASK_STATES = Prepared(lambda p: SyncTask.select(SyncTask.target, SyncTask.state, SyncTask.last_error).where(
    SyncTask.consultation == p))

DUPLICATE_WINDOW = dt.timedelta(hours=24)
CONSULTATION_FIELDS = (
    "org_inn", "lang", "comment", "topic", "online_question_cat", "online_question", "importance", "scheduled_at",
)


def fingerprint(client_id: str, c: dict) -> str:
    """What makes two requests 'the same question': client, comment, time, topic, question fields, lang."""
    parts = [
        client_id, c["comment"], c.get("scheduled_at") and c["scheduled_at"].isoformat(), c.get("topic"),
        c.get("online_question_cat"), c.get("online_question"), c.get("lang", "ru"),
    ]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def _nest_errors(err: ServiceError, location: tuple[str, ...]) -> ServiceError:
    if err.errors and "json" in err.errors:
        inner = err.errors["json"]
        for key in reversed(location):
            inner = {key: inner}
        err.errors = {"json": inner}
    return err


def _absorb_duplicate(fp: str) -> Consultation | None:
    """The live consultation with this fingerprint, or None; releases a fingerprint that has gone stale."""
    existing = BY_FINGERPRINT.first(Consultation, fp)
    if existing is None:
        return None
    if existing.status != "closed" and existing.created_at > utcnow() - DUPLICATE_WINDOW:
        return BY_ID.first(Consultation, existing.id)
    Consultation.update(active_fingerprint=None).where(Consultation.id == existing.id).execute()
    return None


def _enqueue(consultation: Consultation, targets: dict[str, bool], request_id: str | None) -> None:
    now = utcnow()
    rows = []
    for target, configured in targets.items():
        rows.append({
            "id": str(uuid.uuid4()), "consultation": consultation.id, "target": target,
            "state": "pending" if configured else "disabled", "next_attempt_at": now,
            # 1C keeps a Ref_Key the client chose: generating it now, before any POST, is what lets a retry
            # after an uncertain outcome ask "does it exist?" instead of creating a second document.
            "external_id": str(uuid.uuid4()) if target == "onec" else None,
            "request_id": request_id, "created_at": now, "updated_at": now,
        })
    insert_rows(SyncTask, rows)


def create_consultation(
    client_data: dict | None, fields: dict, source: str, *, targets: dict[str, bool],
    request_id: str | None = None, idempotency: tuple[str, str] | None = None, answer=None,
) -> tuple[Consultation | None, IdempotencyRecord | None, bool]:
    """Store the client and the consultation with its sync tasks; returns (consultation, None, created).

    ``idempotency`` is (key, request_hash), recorded in the same transaction. When a concurrent request with
    the same key committed first, nothing is written and (None, its record, False) comes back to replay.
    ``answer(consultation, created)`` returns the response body when it is already final (nothing left to try
    upstream) or None: a final body is stored with the key in the same transaction, so no replay can see the
    key without its answer.
    """
    client_data = dict(client_data or {})
    if fields.get("client_id"):
        client_data.setdefault("client_id", fields["client_id"])
    if fields.get("cl_ref_key") and not client_data.get("cl_ref_key"):
        client_data["cl_ref_key"] = fields["cl_ref_key"]
    client_data.setdefault("org_inn", fields.get("org_inn"))

    def attempt():
        with write_transaction():
            if idempotency:
                key, request_hash = idempotency
                record = IdempotencyRecord.get_or_none(IdempotencyRecord.key == key)
                if record is not None and record.created_at > utcnow() - DUPLICATE_WINDOW:
                    return None, record, False
            try:
                client, _ = resolve_client(client_data)
            except ServiceError as err:
                raise _nest_errors(err, ("client",)) from None
            values = {name: fields.get(name) for name in CONSULTATION_FIELDS}
            values["lang"] = values["lang"] or "ru"
            values["org_inn"] = values["org_inn"] or client.org_inn
            fp = fingerprint(client.id, values)
            consultation = _absorb_duplicate(fp)
            created = consultation is None
            if created:
                now = utcnow()
                consultation = Consultation(
                    id=str(uuid.uuid4()), client=client.id, source=source, fingerprint=fp, active_fingerprint=fp,
                    counterparty_ref_key=fields.get("cl_ref_key") or client.cl_ref_key, status="new",
                    cons_id=None, cl_ref_key=None, number=None, end_date=None,
                    created_at=now, updated_at=now, **values,
                )
                insert_rows(Consultation, [consultation.__data__])
                _enqueue(consultation, targets, request_id)
            if idempotency:
                IdempotencyRecord.delete().where(IdempotencyRecord.key == key).execute()  # a stale one
                body = answer(consultation, created) if answer else None
                IdempotencyRecord.create(
                    key=key, request_hash=request_hash, consultation=consultation.id,
                    status_code=200 if body is not None else None,
                    response_body=json.dumps(body, ensure_ascii=False) if body is not None else None)
            return consultation, None, created

    return retry_on_conflict(attempt)


def find_ticket(ticket_id: str) -> Consultation | None:
    """By Chatwoot's cons_id or by the service's own consultation_id."""
    if "\x00" in ticket_id:
        return None  # never stored, and PostgreSQL refuses such a string outright
    consultation_id = canonical_uuid(ticket_id)
    if consultation_id is not None:
        return BY_ID.first(Consultation, consultation_id)
    return BY_CONS_ID.first(Consultation, ticket_id)


def list_tickets(client_id: str, skip: int, limit: int) -> tuple[list[Consultation], int]:
    if not Client.select().where(Client.id == client_id).exists():
        raise ServiceError(404, "Client not found")
    base = Consultation.select().where(Consultation.client == client_id)
    page = list(base.order_by(Consultation.created_at.desc(), Consultation.id.desc()).offset(skip).limit(limit))
    return page, base.count()


def sync_view(consultation: Consultation) -> dict:
    tasks = {target: (state, error) for target, state, error in TASK_STATES.tuples(consultation.id)}
    return {target: {"state": tasks.get(target, ("disabled", None))[0], "error": tasks.get(target, (None, None))[1]}
            for target in SyncTask.TARGETS}


def fresh_sync_view(targets: dict[str, bool]) -> dict:
    """The sync block of a consultation just stored, before any attempt: no need to read it back."""
    return {target: {"state": "pending" if targets.get(target) else "disabled", "error": None}
            for target in SyncTask.TARGETS}
