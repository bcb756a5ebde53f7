"""Fault injection shared by the emulators.

Control it over HTTP on the emulator itself::

    POST /__emulator__/faults {"mode": "503", "times": 2, "match": "POST /api/v1/accounts/1/conversations"}
    POST /__emulator__/faults {"mode": "none"}             # clear
    GET  /__emulator__/stats                                # request counts per route

Modes:
- ``503``: answer 503 before doing anything;
- ``hang``: sleep ``delay`` seconds (default 30) before doing anything, then serve normally;
- ``slow``: sleep ``delay`` seconds (default 1) then serve normally;
- ``lose_response``: do the work and commit it, then drop the connection without an answer
  (the client sees a connection error or a timeout; the object exists upstream).

``match`` is a substring of ``"<METHOD> <path>"`` (path without the query string); empty matches every
request. ``times`` limits how many matching requests are hit (null: until cleared).
"""
import socket
import threading
from collections import Counter

from flask import Blueprint, Flask, abort, jsonify, request

MODES = {"none", "503", "hang", "slow", "lose_response"}


class ResponseLost(Exception):
    """Raised after a committed write when the fault says the response must never arrive."""


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.mode = "none"
        self.times = None
        self.match = ""
        self.delay = 0.0
        self.stats = Counter()
        # Hanging requests sleep on this event: stopping the server wakes them, so no handler thread is still
        # asleep (and about to log) while the process that runs the emulator exits.
        self.wake = threading.Event()

    def release(self) -> None:
        self.wake.set()

    def set(self, mode: str, times=None, match: str = "", delay=None) -> None:
        with self.lock:
            self.wake.clear()
            self.mode, self.times, self.match = mode, times, match or ""
            default = {"hang": 30.0, "slow": 1.0}.get(mode, 0.0)
            self.delay = float(delay) if delay is not None else default

    def _take(self, modes) -> str | None:
        """Consume one hit of the active fault if it applies to this request."""
        key = f"{request.method} {request.path}"
        with self.lock:
            if self.mode not in modes or self.match not in key:
                return None
            if self.times is not None:
                if self.times <= 0:
                    return None
                self.times -= 1
            return self.mode

    def before_request(self):
        if request.path.startswith("/__emulator__"):
            return None
        with self.lock:
            self.stats[f"{request.method} {request.url_rule.rule if request.url_rule else request.path}"] += 1
            self.stats["total"] += 1
        mode = self._take({"503", "hang", "slow"})
        if mode == "503":
            return jsonify({"error": "Service Unavailable (emulated)"}), 503
        if mode in ("hang", "slow"):
            self.wake.wait(self.delay)
        return None

    def after_commit(self) -> None:
        """Call after a write is committed: drops the connection if the fault says so."""
        if self._take({"lose_response"}):
            sock = request.environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            raise ResponseLost()

    def install(self, app: Flask) -> None:
        """Register the hook and the control endpoints on an emulator app."""
        app.before_request(self.before_request)
        app.extensions["emulator_faults"] = self
        bp = Blueprint("emulator_control", __name__, url_prefix="/__emulator__")

        @bp.post("/faults")
        def set_faults():
            body = request.get_json(force=True, silent=True) or {}
            mode = str(body.get("mode", "none"))
            if mode not in MODES:
                abort(400)
            times, delay = body.get("times"), body.get("delay")
            if (times is not None and not isinstance(times, int)) or (
                    delay is not None and not isinstance(delay, (int, float))):
                abort(400)
            self.set(mode, times, str(body.get("match", "")), delay)
            return jsonify({"mode": self.mode, "times": self.times, "match": self.match, "delay": self.delay})

        @bp.get("/stats")
        def get_stats():
            with self.lock:
                return jsonify(dict(self.stats))

        @app.errorhandler(ResponseLost)
        def lost(_exc):
            # The socket is already shut down; whatever is written here goes nowhere.
            return "", 599

        app.register_blueprint(bp)
