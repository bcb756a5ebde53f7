"""OIDC bearer tokens (contract.md, "Authentication"): JWTs checked against the issuer's discovery document and JWKS.

- Signatures: RS256, ES256 and PS256 only. The algorithm must also fit the key it names (RSA for RS256/PS256,
  EC P-256 for ES256, and the JWK's own ``alg`` when it states one): ``none``, HS* and algorithm confusion
  (HS256 "signed" with the public key) are refused.
- Claims: ``exp``, ``iss`` (equal to the issuer), ``aud`` (containing the audience) and ``sub`` are required;
  ``nbf`` and ``iat`` are checked when present; 60 s leeway for clock skew.
- The discovery document is fetched on the first ``verify``, not at start: the app starts while the issuer is down,
  and a token that cannot be checked for that reason is a 503, not a 401.
- The JWKS is cached in memory. A token naming an unknown ``kid`` refetches it, at most once per
  ``jwks_refresh_interval`` (a flood of made-up kids costs the issuer one request a minute); the new set replaces
  the old, so a key the issuer has dropped stops being accepted. The set is also refetched when older than
  ``jwks_max_age``, so a dropped key goes away even when no new kid shows up.
- Tokens are never logged.
"""
import logging
import threading
from time import monotonic
from typing import Any

import jwt
import requests
from flask_smorest import abort

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256", "PS256")
_RSA_ALGORITHMS = ("RS256", "PS256")
_MAX_TOKEN_LENGTH = 16 * 1024
_MIN_RSA_BITS = 2048
_INVALID_TOKEN_HEADERS = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class IssuerUnavailable(Exception):
    """The discovery document or the JWKS could not be fetched or made no sense."""


class _Key:
    """One usable signing key from the JWKS."""

    __slots__ = ("kty", "alg", "key")

    def __init__(self, kty: str, alg: str | None, key: Any):
        self.kty = kty
        self.alg = alg
        self.key = key

    def fits(self, alg: str) -> bool:
        if self.alg is not None and self.alg != alg:
            return False
        return self.kty == "RSA" if alg in _RSA_ALGORITHMS else self.kty == "EC"


def _parse_jwks(document: Any) -> dict[str, _Key]:
    """Usable signature keys by kid; anything else in the set (oct, OKP, other curves, enc keys...) is skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise IssuerUnavailable("JWKS has no 'keys' list")
    keys: dict[str, _Key] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid, kty, alg = jwk.get("kid"), jwk.get("kty"), jwk.get("alg")
        if not isinstance(kid, str) or not kid or kid in keys:
            continue
        if jwk.get("use", "sig") != "sig" or (alg is not None and alg not in ALGORITHMS):
            continue
        ops = jwk.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            continue
        if kty == "RSA":
            parse_as = "RS256"
        elif kty == "EC" and jwk.get("crv") == "P-256":
            parse_as = "ES256"
        else:
            continue
        try:
            key = jwt.PyJWK(jwk, algorithm=parse_as).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            log.warning("OIDC: skipping JWKS key %r that cannot be parsed", kid)
            continue
        if kty == "RSA" and key.key_size < _MIN_RSA_BITS:
            log.warning("OIDC: skipping JWKS key %r: RSA key of %d bits", kid, key.key_size)
            continue
        keys[kid] = _Key(kty, alg, key)
    return keys


class OIDCVerifier:
    """Verifies bearer JWTs for one issuer and audience; one instance per app, shared by all threads."""

    def __init__(self, issuer: str, audience: str, *, leeway: float = 60, jwks_refresh_interval: float = 60,
                 timeout: float = 5, jwks_max_age: float = 3600, retry_after_failure: float = 5):
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.jwks_refresh_interval = jwks_refresh_interval
        self.jwks_max_age = jwks_max_age
        # After a failed first fetch, answer 503 at once for this long instead of making every request wait on
        # a dead issuer (and queueing them all behind the lock).
        self.retry_after_failure = retry_after_failure
        self.timeout = timeout
        self.discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self._lock = threading.Lock()
        self._jwks_uri: str | None = None
        self._keys: dict[str, _Key] | None = None  # replaced whole, never mutated: read without the lock
        self._loaded_at = 0.0  # monotonic time of the last successful JWKS fetch
        self._attempted_at: float | None = None  # monotonic time of the last JWKS fetch attempt

    # ---------------------------------------------------------------- fetching

    def _get_json(self, url: str) -> Any:
        try:
            response = self.session.get(url, timeout=self.timeout)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise IssuerUnavailable(f"{url}: {type(exc).__name__}") from exc

    def _discover(self) -> str:
        if self._jwks_uri is None:
            document = self._get_json(self.discovery_url)
            if not isinstance(document, dict):
                raise IssuerUnavailable("discovery document is not a JSON object")
            if document.get("issuer") != self.issuer:
                raise IssuerUnavailable(f"discovery document names issuer {document.get('issuer')!r}")
            jwks_uri = document.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise IssuerUnavailable("discovery document has no usable jwks_uri")
            self._jwks_uri = jwks_uri
        return self._jwks_uri

    def _refresh_locked(self) -> None:
        """Fetch the JWKS and replace the cached keys; the caller holds the lock."""
        self._attempted_at = monotonic()
        keys = _parse_jwks(self._get_json(self._discover()))
        if not keys:
            log.warning("OIDC: the JWKS of %s holds no usable RS256/ES256/PS256 key", self.issuer)
        self._keys = keys
        self._loaded_at = monotonic()
        log.info("OIDC: loaded %d signing key(s) from %s", len(keys), self.issuer)

    def _may_refetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self.jwks_refresh_interval

    def _key_for(self, kid: str) -> _Key | None:
        """The key named ``kid``, refetching the JWKS when needed; ``IssuerUnavailable`` if there are no keys yet."""
        keys = self._keys
        if keys is not None and kid in keys and monotonic() - self._loaded_at < self.jwks_max_age:
            return keys[kid]
        with self._lock:
            now = monotonic()
            if self._keys is None:
                if self._attempted_at is not None and now - self._attempted_at < self.retry_after_failure:
                    raise IssuerUnavailable("recent fetch failed")
                self._refresh_locked()
            else:
                stale = now - self._loaded_at >= self.jwks_max_age
                if (kid not in self._keys or stale) and self._may_refetch(now):
                    try:
                        self._refresh_locked()
                    except IssuerUnavailable as exc:
                        # Keep the keys we have; try again after the interval.
                        log.warning("OIDC: JWKS refresh failed, keeping the cached keys: %s", exc)
            return self._keys.get(kid)

    # ---------------------------------------------------------------- verifying

    def verify(self, token: str) -> dict:
        """The token's claims, or ``abort(401)`` (bad token) / ``abort(503)`` (issuer unreachable)."""
        try:
            return self._verify(token)
        except IssuerUnavailable as exc:
            log.warning("OIDC: cannot verify tokens, identity provider unavailable: %s", exc)
            abort(503, message="Identity provider unavailable")
        except jwt.ExpiredSignatureError:
            reason = "Token expired"
        except jwt.ImmatureSignatureError:
            reason = "Token not yet valid"
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            log.info("OIDC: token refused: %s", type(exc).__name__)
            reason = "Invalid token"
        abort(401, message=reason, headers=_INVALID_TOKEN_HEADERS)

    def _verify(self, token: str) -> dict:
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
            raise jwt.DecodeError("token too long")
        header = jwt.get_unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise jwt.InvalidAlgorithmError("algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise jwt.InvalidTokenError("no kid")
        key = self._key_for(kid)
        if key is None or not key.fits(alg):
            raise jwt.InvalidKeyError("unknown kid or key does not fit the algorithm")
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway,
            options={"require": ["exp", "iss", "aud", "sub"], "verify_signature": True},
        )
        if claims.get("iss") != self.issuer:
            raise jwt.InvalidIssuerError("issuer")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise jwt.InvalidTokenError("sub must be a non-empty string")
        return claims
