"""APScheduler is only the clock: the tables hold the state, so every worker may run these jobs at once.

The outbox drain is safe everywhere (claims); the 1C pull takes a lease so one host runs it at a time.
Started in each serving process: gunicorn's ``post_worker_init`` hook, or the first request under
``flask run``. Never in tests unless a test asks (SCHEDULER_ENABLED is false there).
"""
import datetime as dt
import logging

from ..db import db
from ..models import IdempotencyRecord, WebhookDelivery, utcnow
from . import outbox, pull

log = logging.getLogger(__name__)
_scheduler = None


def _job(name, fn):
    def run(*args):
        try:
            fn(*args)
        except Exception:
            log.exception("background job %s failed", name)

    return run


def cleanup() -> None:
    """Forget idempotency keys and webhook delivery ids past their windows."""
    with db.connection_context():
        IdempotencyRecord.delete().where(IdempotencyRecord.created_at < utcnow() - dt.timedelta(hours=25)).execute()
        WebhookDelivery.delete().where(WebhookDelivery.received_at < utcnow() - dt.timedelta(days=7)).execute()


def start_for(app) -> None:
    """Start the background jobs for ``app`` unless SCHEDULER_ENABLED is false (idempotent per process)."""
    global _scheduler
    if _scheduler is not None or not app.config.get("SCHEDULER_ENABLED"):
        return
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1})
    now = dt.datetime.now(dt.UTC)
    scheduler.add_job(_job("sync", outbox.drain), "interval", args=[app],
                      seconds=app.config["SYNC_INTERVAL_SECONDS"], next_run_time=now, id="sync", name="sync")
    scheduler.add_job(_job("onec_pull", pull.pull_onec), "interval", args=[app, outbox.OWNER],
                      seconds=app.config["ONEC_PULL_INTERVAL_SECONDS"], id="onec_pull", name="onec_pull")
    scheduler.add_job(_job("cleanup", cleanup), "interval", hours=1, id="cleanup", name="cleanup")
    scheduler.start()
    _scheduler = scheduler
    log.info("background jobs started: sync every %ss, 1C pull every %ss", app.config["SYNC_INTERVAL_SECONDS"],
             app.config["ONEC_PULL_INTERVAL_SECONDS"])


def stop() -> None:
    global _scheduler
    if _scheduler is not None:
        _scheduler.shutdown(wait=False)
        _scheduler = None
