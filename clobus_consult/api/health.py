"""GET /api/health: liveness plus a cheap per-upstream summary of the outbox."""
from flask import current_app
from flask.views import MethodView

from .. import __version__, security
from ..db import db
from ..schemas import HealthOut
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
        db.execute_sql("SELECT 1")
        return {
            "status": "ok", "database": "ok", "version": __version__,
            "upstreams": outbox.health_summary(current_app),
        }
