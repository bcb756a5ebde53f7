"""GET /api/health: liveness plus a cheap per-upstream summary of the outbox."""
from flask import current_app
from flask.views import MethodView

from .. import __version__, migrate, security
from ..db import db
from ..schemas import HealthOut, ReadyOut
from ..sync import outbox
from . import Blueprint, examples

blp = Blueprint("health", __name__, url_prefix="/api/health", description="Service health")
security.limiter.exempt(blp)  # probes from the proxy or monitoring must never see a 429


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthOut, example=examples.HEALTH)
    @blp.doc(security=[])
    def get(self):
        """Service health (no authentication)"""
        return {  # the summary's two indexed queries double as the database check
            "status": "ok", "database": "ok", "version": __version__,
            "upstreams": outbox.health_summary(current_app),
        }


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, ReadyOut)
    @blp.alt_response(503, schema=ReadyOut, description="Not ready: see checks")
    @blp.doc(security=[])
    def get(self):
        """Readiness: database reachable, no pending migrations, upstream summary (503 when not ready)"""
        checks, ready = {}, True
        try:
            db.execute_sql("SELECT 1")
            checks["database"] = "ok"
            waiting = migrate.pending()
            checks["migrations"] = "ok" if not waiting else f"pending: {', '.join(waiting)}"
            ready = not waiting
            upstreams = outbox.health_summary(current_app)
        except Exception as exc:  # the point of this endpoint is to say so, not to fail
            checks.setdefault("database", f"error: {type(exc).__name__}")
            return {"status": "not ready", "checks": checks, "upstreams": {}}, 503
        body = {"status": "ready" if ready else "not ready", "checks": checks, "upstreams": upstreams}
        return body, 200 if ready else 503
