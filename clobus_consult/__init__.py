"""clobus-consult: intake of consultation requests for clobus.uz, synced to Chatwoot and 1C:ЦЛ."""
import logging
import os
import uuid

from flask import Flask, g, request

__version__ = "1.0.0"

log = logging.getLogger(__name__)


def create_app(test_config: dict | None = None, instance_path: str | None = None) -> Flask:
    """Build the app: defaults → instance/config.py → CLOBUS_* environment → ``test_config``.

    The instance folder is ``instance_path``, else ``$CLOBUS_INSTANCE``, else Flask's default (``instance/``
    beside the package in a checkout).
    """
    instance_path = instance_path or os.environ.get("CLOBUS_INSTANCE") or None
    if instance_path:
        instance_path = os.path.abspath(instance_path)
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.config.from_object("clobus_consult.config")
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("CLOBUS")
    if test_config:
        app.config.update(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    app.json.sort_keys = False  # fields in the order the schemas (and the API document) give them

    from . import api, auth, db, errors, migrate, observability, security
    from .sync import outbox

    db.init_app(app)
    auth.init_app(app)
    outbox.init_app(app)
    security.init_app(app)
    smorest = errors.Api(app, spec_kwargs={
        "info": {"description": "Consultation requests from clobus.uz, synced to Chatwoot and 1C:ЦЛ."},
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    })
    errors.register_error_handlers(app, smorest)
    api.register(smorest)

    if app.config["SCHEDULER_ENABLED"]:
        # Under ``flask run`` the serving process starts the jobs on its first request (gunicorn workers have
        # started them already in post_worker_init); CLI commands that never serve start nothing.
        from .sync import scheduler

        app.before_request(lambda: scheduler.start_for(app))

    @app.before_request
    def _request_id():
        incoming = request.headers.get("X-Request-ID", "")
        usable = 0 < len(incoming) <= 64 and incoming.isascii() and incoming.isprintable()
        g.request_id = incoming if usable else uuid.uuid4().hex
        api.require_json_body()

    @app.after_request
    def _headers(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    observability.init_app(app)

    from .cli import register_cli

    register_cli(app)
    if app.config["MIGRATE_ON_START"]:
        migrate.upgrade()
    return app
