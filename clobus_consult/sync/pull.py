"""Pull 1C's changes (1C has no webhooks): documents modified since the last run, paged, mapped to statuses.

One host at a time: the job takes a lease row in ``job_state`` with a conditional UPDATE before it starts.
The next run starts from the newest ДатаИзменения seen (1C's own clock, so host clock skew loses nothing)
minus a margin; the client pages by that timestamp, so a document modified while we page is read again
later rather than skipped. Re-reading a few changes is harmless: applying is idempotent.
"""
import datetime as dt
import logging

from peewee import IntegrityError

from ..db import db
from ..models import JobState, utcnow
from ..services.status import apply_onec_change

log = logging.getLogger(__name__)

JOB = "onec_pull"
MARGIN = dt.timedelta(minutes=5)
FIRST_LOOKBACK = dt.timedelta(days=2)


def take_lease(name: str, owner: str, seconds: float) -> bool:
    now = utcnow()
    try:
        JobState.insert(name=name, updated_at=now).on_conflict_ignore().execute()
    except IntegrityError:
        pass
    taken = (JobState.update(lease_owner=owner, lease_until=now + dt.timedelta(seconds=seconds))
             .where((JobState.name == name)
                    & (JobState.lease_until.is_null() | (JobState.lease_until < now) | (JobState.lease_owner == owner)))
             .execute())
    return taken == 1


def release_lease(name: str, owner: str, value: str | None = None) -> None:
    update = {JobState.lease_owner: None, JobState.lease_until: None, JobState.updated_at: utcnow()}
    if value is not None:
        update[JobState.value] = value
    JobState.update(update).where((JobState.name == name) & (JobState.lease_owner == owner)).execute()


def pull_onec(app, owner: str, page_size: int = 1000) -> int | None:
    """Apply 1C changes since the last run; returns how many consultations changed (None: not our turn)."""
    client = app.extensions["clobus_upstreams"].clients.get("onec")
    if client is None:
        return None
    with db.connection_context():
        if not take_lease(JOB, owner, seconds=max(600, app.config["ONEC_PULL_INTERVAL_SECONDS"])):
            return None
        state = JobState.get_by_id(JOB)
    since = dt.datetime.fromisoformat(state.value) if state.value else utcnow() - FIRST_LOOKBACK
    newest = since
    changed = 0
    try:
        for change in client.changes_since(since.replace(tzinfo=dt.UTC), page_size=page_size):
            with db.connection_context():
                changed += apply_onec_change(change)
            if change["modified_at"]:
                newest = max(newest, change["modified_at"].astimezone(dt.UTC).replace(tzinfo=None))
    except Exception:
        with db.connection_context():
            release_lease(JOB, owner)
        raise
    with db.connection_context():
        release_lease(JOB, owner, value=max(since, newest - MARGIN).isoformat())
    log.info("1C pull: %d consultations changed since %s", changed, since.isoformat())
    return changed
