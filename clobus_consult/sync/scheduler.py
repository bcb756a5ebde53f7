"""APScheduler is only the clock: the outbox table holds the state, so a job may run in every worker."""
import logging

log = logging.getLogger(__name__)
_scheduler = None


def start_for(app) -> None:
    """Start the background jobs for ``app`` unless SCHEDULER_ENABLED is false."""
    global _scheduler
    if _scheduler is not None or not app.config.get("SCHEDULER_ENABLED"):
        return
    from apscheduler.schedulers.background import BackgroundScheduler

    _scheduler = BackgroundScheduler(daemon=True)
    _scheduler.start()


def stop() -> None:
    global _scheduler
    if _scheduler is not None:
        _scheduler.shutdown(wait=False)
        _scheduler = None
