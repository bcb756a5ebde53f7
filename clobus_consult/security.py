"""Rate limits, proxy trust, CORS and response headers: what a JSON API on a public VPS needs.

Rate limits (flask-limiter): RATELIMIT_DEFAULT is flask-limiter's default for every route (by client IP:
docs, openapi.json); every API call also counts against its caller's bearer token (RATELIMIT_DEFAULT;
RATELIMIT_CREATE on the create endpoints) and against the client IP (RATELIMIT_PER_IP), so neither a stolen
token from many addresses nor many made-up tokens from one address get far. Over the limit: 429 with
``Retry-After``. ``RATELIMIT_STORAGE_URI`` decides where counters live: ``memory://`` counts per process, so
with W gunicorn workers a caller may get up to W times the limit; ``redis://127.0.0.1:6379`` shares the counters
between workers and hosts (use it when scaling out, or when the limit must be exact).

The client IP comes from ProxyFix trusting exactly ``PROXY_TRUSTED_HOPS`` (1: the nginx on this host) entries
of X-Forwarded-For: whatever a caller puts in that header itself sits further left and is ignored.
"""
from flask import Flask, request
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from .auth import bearer_token, fingerprint

limiter = Limiter(key_func=lambda: request.remote_addr or "unknown", headers_enabled=True)


def caller_key() -> str:
    """The bearer token (hashed: counters must not hold secrets), else the client IP."""
    token = bearer_token()
    return "token:" + fingerprint(token) if token else ip_key()


def ip_key() -> str:
    return "ip:" + (request.remote_addr or "unknown")


def limit_api(blueprint, create: bool = False) -> None:
    """Attach the per-token and per-IP limits (and the stricter create limit) to an API blueprint."""
    from flask import current_app

    limiter.limit(lambda: current_app.config["RATELIMIT_DEFAULT"], key_func=caller_key, scope="token")(blueprint)
    limiter.limit(lambda: current_app.config["RATELIMIT_PER_IP"], key_func=ip_key, scope="ip")(blueprint)
    if create:
        limiter.limit(lambda: current_app.config["RATELIMIT_CREATE"], key_func=caller_key,
                      scope="create")(blueprint)


def init_app(app: Flask) -> None:
    hops = int(app.config["PROXY_TRUSTED_HOPS"])
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)
    limiter.init_app(app)
    origins = {o.strip() for o in str(app.config.get("CORS_ORIGINS") or "").split(",") if o.strip()}

    @app.after_request
    def _headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith("/api/") and request.path != "/api/openapi.json":
            headers.setdefault("Cache-Control", "no-store")
            headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
            if request.method == "OPTIONS":
                headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
                headers["Access-Control-Max-Age"] = "600"
            headers["Access-Control-Expose-Headers"] = "X-Request-ID, Retry-After"
        return response
