"""Fixtures in the flaskr style: an app per test on its own SQLite file (or on PostgreSQL when
CLOBUS_TEST_DATABASE_URL names one), a test client, a CLI runner, and the bearer token to send."""
import os
import uuid

import pytest

from clobus_consult import create_app
from clobus_consult.db import db
from clobus_consult.sync import outbox

TOKEN = "test-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _database_url(tmp_path) -> str:
    return os.environ.get("CLOBUS_TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/clobus.sqlite3"


def _empty_postgres() -> None:
    """Tests on PostgreSQL share one database: start each from empty tables."""
    from clobus_consult.models import MODELS

    with db.connection_context():
        names = ", ".join(f'"{m._meta.table_name}"' for m in MODELS)
        db.execute_sql(f"TRUNCATE {names} CASCADE")


@pytest.fixture
def make_app(tmp_path):
    """Build an app with extra config; the default one is the ``app`` fixture."""
    apps = []

    def factory(**config):
        settings = {
            "TESTING": True,
            "DATABASE_URL": _database_url(tmp_path),
            "AUTH_MODE": "static",
            "API_TOKENS": TOKEN,
            "SCHEDULER_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "CHATWOOT_URL": None,
            "ONEC_URL": None,
        }
        settings.update(config)
        app = create_app(settings, instance_path=str(tmp_path / "instance"))
        if settings["DATABASE_URL"].startswith("postgres") and not apps:
            _empty_postgres()
        apps.append(app)
        return app

    yield factory
    for built in apps:  # background pushes of this test settle before its database goes away
        outbox.upstreams(built).close()
    if not db.is_closed():
        db.close()
    if db.obj is not None:
        db.obj.close_all()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def api(client):
    """The test client with the bearer token already on every request."""

    class Api:
        def get(self, url, **kw):
            return client.get(url, headers={**AUTH, **kw.pop("headers", {})}, **kw)

        def post(self, url, **kw):
            return client.post(url, headers={**AUTH, **kw.pop("headers", {})}, **kw)

    return Api()
