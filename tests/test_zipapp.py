"""The single-file build: scripts/build-pyz.sh makes a pyz that the bare interpreter runs, migrates and serves.

The pyz is built once per test session (about 15 s with the wheels cached, see the script), or taken from
$CLOBUS_PYZ when that names one already built. It runs under the interpreter the venv was made from (not the venv:
every dependency must come from the pyz), with SHIV_ROOT, HOME and XDG_RUNTIME_DIR in a temp folder so nothing
lands in the real home.
"""
import os
import runpy
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from clobus_consult import __version__, config
from clobus_consult.__main__ import _pop_instance

from .processes import ROOT, free_port, wait_http

TOKEN = "zipapp-" + uuid.uuid4().hex


def _bare_python() -> str:
    """The venv's base interpreter (same version as the build), preferring the system one when it matches."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path("/usr/bin") / version, Path(sys.base_prefix) / "bin" / version):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return sys.executable


@pytest.fixture(scope="session")
def pyz(tmp_path_factory) -> Path:
    if os.environ.get("CLOBUS_PYZ"):
        return Path(os.environ["CLOBUS_PYZ"])
    out = tmp_path_factory.mktemp("build") / "clobus-consult.pyz"
    result = subprocess.run(["bash", str(ROOT / "scripts" / "build-pyz.sh"), "-o", str(out)],
                            env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"build failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture
def run_env(tmp_path):
    """A clean environment for the pyz: no venv, no CLOBUS_/GUNICORN_ settings of the caller."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLOBUS_", "GUNICORN_", "PYTHON", "SHIV_", "VIRTUAL_ENV", "FLASK_", "PROMETHEUS_"))}
    (tmp_path / "tmp").mkdir()
    env.update(SHIV_ROOT=str(tmp_path / "shiv"), HOME=str(home), XDG_RUNTIME_DIR=str(home),
               TMPDIR=str(tmp_path / "tmp"))
    return env


def run_pyz(pyz, *args, env, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([_bare_python(), str(pyz), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_operator_commands_from_the_pyz(pyz, run_env, tmp_path):
    instance = tmp_path / "instance"
    version = run_pyz(pyz, "--version", env=run_env)
    assert version.returncode == 0 and f"clobus-consult {__version__}" in version.stdout

    upgrade = run_pyz(pyz, "--instance", str(instance), "db", "upgrade", env=run_env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert (instance / "clobus.sqlite3").is_file()
    # --instance also after the command; the flask CLI's groups pass through
    status = run_pyz(pyz, "db", "status", "--instance", str(instance), env=run_env)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stderr
    sync = run_pyz(pyz, "sync", "status", f"--instance={instance}", env=run_env)
    assert sync.returncode == 0 and "chatwoot: configured=False" in sync.stdout, sync.stderr

    # Flask's default instance folder would be inside the extracted archive: refused.
    bare = run_pyz(pyz, "db", "upgrade", env=run_env)
    assert bare.returncode != 0 and "--instance" in bare.stderr
    assert (tmp_path / "shiv").is_dir() and not (Path.home() / ".shiv" / pyz.name).exists()


@pytest.mark.slow
def test_the_pyz_carries_every_dependency(pyz, run_env):
    check = run_pyz(pyz, "-c", "import jwt.algorithms, psycopg2, gunicorn.workers.gthread, flask_limiter; "
                    "assert jwt.algorithms.has_crypto, 'PyJWT without cryptography: no RS256/ES256 for OIDC'",
                    env={**run_env, "SHIV_INTERPRETER": "1"})
    assert check.returncode == 0, check.stderr


@pytest.mark.slow
def test_serve_from_the_pyz_then_stop_cleanly(pyz, run_env, tmp_path):
    instance, port = tmp_path / "instance", free_port()
    env = {**run_env, "CLOBUS_AUTH_MODE": "static", "CLOBUS_API_TOKENS": TOKEN, "CLOBUS_SCHEDULER_ENABLED": "false"}
    if os.environ.get("CLOBUS_TEST_DATABASE_URL"):  # the suite's PostgreSQL pass: the pyz's psycopg2 on a server
        env["CLOBUS_DATABASE_URL"] = os.environ["CLOBUS_TEST_DATABASE_URL"]
    url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [_bare_python(), str(pyz), "--instance", str(instance), "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(url + "/api/health", timeout=30, proc=proc)
            health = requests.get(url + "/api/health", timeout=5)
            assert health.status_code == 200 and health.json()["version"] == __version__

            created = requests.post(url + "/api/consultations/create", headers=auth, timeout=10, json={
                "client": {"email": "z@example.com"}, "consultation": {"comment": "zipapp"}})
            assert created.status_code == 200, created.text
            consultation_id = created.json()["consultation"]["consultation_id"]
            ticket = requests.get(f"{url}/api/tickets/{consultation_id}", headers=auth, timeout=10)
            assert ticket.status_code == 200 and ticket.json()["comment"] == "zipapp"
            assert requests.get(f"{url}/api/tickets/{consultation_id}", timeout=10).status_code == 401
            metrics = requests.get(url + "/metrics", timeout=10)
            assert metrics.status_code == 200 and "clobus_http_requests_total" in metrics.text
            metrics_dirs = [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("clobus-prometheus-")]
            assert len(metrics_dirs) == 1  # where the workers' metrics meet (PROMETHEUS_MULTIPROC_DIR)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                returncode = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                returncode = proc.wait()
    output = (tmp_path / "serve.log").read_text(errors="replace")
    assert returncode == 0, output
    assert "Shutting down: Master" in output
    assert (instance / "clobus.sqlite3").is_file() == ("CLOBUS_DATABASE_URL" not in env)
    assert not metrics_dirs[0].exists()  # removed with the master
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):  # no worker left behind in the process group
        os.killpg(proc.pid, 0)


def test_serve_settings_are_gunicorn_conf(monkeypatch):
    """gunicorn.conf.py (checkout) and serve.py (pyz) give gunicorn the same settings and hooks."""
    from gunicorn.config import Config

    from clobus_consult import serve

    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert serve.settings()["workers"] == 3
    known = Config().settings
    assert {k: v for k, v in conf.items() if k in known} == {**serve.settings(), **serve.HOOKS}, (
        "gunicorn.conf.py and clobus_consult/serve.py differ: make it `from clobus_consult.serve import *`")


@pytest.mark.parametrize("args, rest, instance", [
    (["db", "upgrade"], ["db", "upgrade"], None),
    (["--instance", "/i", "serve", "-w", "1"], ["serve", "-w", "1"], "/i"),
    (["serve", "--instance=/i", "-b", "x"], ["serve", "-b", "x"], "/i"),
    (["shell", "--", "--instance", "/i"], ["shell", "--", "--instance", "/i"], None),
])
def test_instance_option_stands_anywhere(args, rest, instance):
    assert _pop_instance(args) == (rest, instance)


def test_env_example_documents_every_setting():
    text = (ROOT / "deploy" / "env.example").read_text()
    missing = [name for name in dir(config) if name.isupper() and f"CLOBUS_{name}=" not in text]
    assert not missing, f"add to deploy/env.example: {missing}"
