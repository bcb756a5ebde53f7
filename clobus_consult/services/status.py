"""Status flowing back from the upstreams onto consultations (contract.md "Consultations", "Status").

Each source keeps its own clock on the row (``chatwoot_status_at``, ``onec_modified_at``): an event older
than what was already applied from that source is ignored, so late or repeated deliveries change nothing.
And each source's last status is kept (``chatwoot_status``, ``onec_status``): the consultation's status moves
only when that source's status moves, so a 1C re-read or a Chatwoot update of something else (an assignee, a
label) cannot undo what the other upstream did.
"""
import datetime as dt

from ..db import write_transaction
from ..models import Consultation, utcnow


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def _close(consultation: Consultation, at: dt.datetime) -> None:
    consultation.status = "closed"
    consultation.end_date = consultation.end_date or at
    consultation.active_fingerprint = None  # a closed consultation no longer absorbs a repeated request


def apply_chatwoot_status(cons_id: str, status: str, at: dt.datetime) -> str:
    """Conversation resolved → closed (end_date); reopened after closed → pending. Returns what happened."""
    at = _naive_utc(at)
    with write_transaction():
        consultation = Consultation.get_for_update(Consultation.cons_id == str(cons_id))
        if consultation is None:
            return "unknown conversation"
        if consultation.chatwoot_status_at and at < consultation.chatwoot_status_at:
            return "stale"
        consultation.chatwoot_status_at = at
        previous, consultation.chatwoot_status = consultation.chatwoot_status, status
        if status == "resolved" and previous != "resolved" and consultation.status != "closed":
            _close(consultation, at)
        elif status in ("open", "pending") and previous == "resolved" and consultation.status == "closed":
            consultation.status, consultation.end_date = "pending", None
        else:
            consultation.save()
            return "unchanged"
        consultation.updated_at = utcnow()
        consultation.save()
        return consultation.status


def apply_onec_change(change: dict) -> bool:
    """One changed Document_ТелефонныйЗвонок from the 1C pull; returns True if a consultation changed."""
    modified = _naive_utc(change["modified_at"])
    with write_transaction():
        consultation = Consultation.get_for_update(Consultation.cl_ref_key == change["ref_key"])
        # A pull reads the document's current state, so only a strictly older snapshot is stale.
        if consultation is None or (consultation.onec_modified_at and modified < consultation.onec_modified_at):
            return False
        before = _visible(consultation)
        consultation.onec_modified_at = modified
        number_before = consultation.number
        if change.get("number"):
            consultation.number = change["number"]
        if change.get("consultation_at"):
            consultation.scheduled_at = _naive_utc(change["consultation_at"])
        status = change["status"]
        previous, consultation.onec_status = consultation.onec_status, status
        if status == previous:
            pass  # a re-read, or a change of something else in the document: the status stands
        elif status == "closed":
            ended = change.get("ended_at")
            _close(consultation, _naive_utc(ended) if ended else modified)
        elif status in ("pending", "other"):
            consultation.status, consultation.end_date = status, None
        changed = _visible(consultation) != before
        if changed:
            consultation.updated_at = utcnow()
        consultation.save()
        if consultation.number != number_before:
            from ..sync.outbox import queue_number

            queue_number(consultation)
        return changed


def _visible(c: Consultation) -> tuple:
    return c.status, c.number, c.scheduled_at, c.end_date
