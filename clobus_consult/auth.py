"""Bearer authentication for the API (contract.md, "Authentication").

- ``static``: the token must equal one of ``API_TOKENS``, compared in constant time;
- ``any``: a bearer token is required but not checked (development only; a warning is logged at start);
- ``oidc``: a JWT verified against ``OIDC_ISSUER`` (see ``oidc.py``).
The caller's identity lands in ``g.principal``: rate limits and idempotency keys are scoped by it.
"""
import hashlib
import hmac
import logging

from flask import Flask, current_app, g, request
from flask_smorest import abort

log = logging.getLogger(__name__)

MODES = ("static", "any", "oidc")


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def static_tokens(app: Flask) -> list[bytes]:
    raw = app.config.get("API_TOKENS") or ""
    if isinstance(raw, (list, tuple)):
        raw = ",".join(raw)
    return [t.strip().encode() for t in str(raw).split(",") if t.strip()]


def authenticate() -> None:
    """Set ``g.principal`` or answer 401 with ``WWW-Authenticate: Bearer``."""
    if request.method == "OPTIONS":
        return  # a CORS preflight carries no credentials by design; it reaches no view
    token = bearer_token()
    if token is None:
        abort(401, message="Not authenticated")
    mode = current_app.config["AUTH_MODE"]
    if mode == "any":
        g.principal = "any:" + fingerprint(token)
    elif mode == "static":
        candidate = token.encode("utf-8", "surrogateescape")
        # Compare against every token, not stopping at the first match, so timing says nothing.
        matched = False
        for known in current_app.extensions["clobus_auth_tokens"]:
            matched |= hmac.compare_digest(candidate, known)
        if not matched:
            abort(401, message="Invalid token")
        g.principal = "token:" + fingerprint(token)
    else:
        claims = current_app.extensions["clobus_oidc"].verify(token)
        g.principal = "oidc:" + str(claims.get("sub", ""))


def init_app(app: Flask) -> None:
    mode = app.config["AUTH_MODE"]
    if mode not in MODES:
        raise RuntimeError(f"AUTH_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    app.extensions["clobus_auth_tokens"] = static_tokens(app)
    if mode == "any":
        log.warning("AUTH_MODE=any: bearer tokens are NOT verified. Use it for local development only.")
    elif mode == "static" and not app.extensions["clobus_auth_tokens"]:
        log.warning("AUTH_MODE=static with no API_TOKENS: every API call will be refused with 401.")
    elif mode == "oidc":
        from .oidc import OIDCVerifier

        if not (app.config.get("OIDC_ISSUER") and app.config.get("OIDC_AUDIENCE")):
            raise RuntimeError("AUTH_MODE=oidc needs OIDC_ISSUER and OIDC_AUDIENCE")
        app.extensions["clobus_oidc"] = OIDCVerifier(app.config["OIDC_ISSUER"], app.config["OIDC_AUDIENCE"])
