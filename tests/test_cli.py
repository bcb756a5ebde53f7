"""Operator commands through the flask CLI."""
import sqlite3

from clobus_consult import create_app

from .conftest import AUTH


def test_db_upgrade_is_idempotent_and_status_reports(runner, app):
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and "up to date" in result.output
    result = runner.invoke(args=["db", "status"])
    assert result.exit_code == 0


def test_migrations_create_the_schema_from_nothing(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path}/fresh.sqlite3")
    assert app
    tables = {row[0] for row in sqlite3.connect(tmp_path / "fresh.sqlite3").execute(
        "select name from sqlite_master where type in ('table', 'index')")}
    assert {"client", "consultation", "sync_task", "idempotency_record", "schema_migration", "sync_task_due"} <= tables


def test_init_token_generates_once(make_app, tmp_path):
    app = make_app(API_TOKENS="")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["init-token"])
    assert result.exit_code == 0 and "Generated an API token" in result.output
    token = result.output.strip().splitlines()[-1].strip()
    config = (tmp_path / "instance" / "config.py").read_text()
    assert token in config
    settings = {k: v for k, v in app.config.items() if k.startswith(("DATABASE", "SCHEDULER", "RATELIMIT"))}
    again = create_app(settings, instance_path=str(tmp_path / "instance"))  # reads instance/config.py
    result = again.test_cli_runner().invoke(args=["init-token"])
    assert "already configured" in result.output
    client = again.test_client()
    r = client.post("/api/clients", json={"email": "a@example.com"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_backup_is_consistent_while_writes_continue(make_app, tmp_path):
    import threading

    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path}/live.sqlite3")  # backup is SQLite's; PostgreSQL: pg_dump
    client = app.test_client()
    made = [client.post("/api/consultations/create", headers=AUTH, json={
        "client": {"email": f"b{i}@example.com"}, "consultation": {"comment": f"Вопрос {i}"}}
    ).get_json()["consultation"]["consultation_id"] for i in range(30)]
    stop = threading.Event()

    def keep_writing():
        writer_client, i = app.test_client(), 0
        while not stop.is_set():
            writer_client.post("/api/clients", json={"email": f"w{i}@example.com"}, headers=AUTH)
            i += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "copy.sqlite3")])
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    assert "integrity ok" in result.output
    copy = sqlite3.connect(tmp_path / "copy.sqlite3")
    stored = {row[0] for row in copy.execute("select id from consultation")}
    assert set(made) <= stored
    assert copy.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_backup_refuses_the_live_file(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path}/live.sqlite3")
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "live.sqlite3")])
    assert result.exit_code != 0 and "live database" in result.output
