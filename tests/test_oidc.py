"""AUTH_MODE=oidc (contract.md, "Authentication") against a local issuer served over real HTTP on 127.0.0.1.

The issuer is a tiny Flask app (discovery + JWKS) whose key set each test can change; keys are made once per module.
Time for the JWKS refresh rules is a fake monotonic clock; token times (exp, nbf) are real.
"""
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections import Counter

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from clobus_consult import oidc
from clobus_consult.emulators.server import ServerThread

AUDIENCE = "clobus-api"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROGUE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk(private_key, kid: str, **extra) -> dict:
    is_rsa = isinstance(private_key, rsa.RSAPrivateKey)
    algorithm = jwt.algorithms.RSAAlgorithm if is_rsa else jwt.algorithms.ECAlgorithm
    return {**algorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, "use": "sig", **extra}


DEFAULT_JWKS = {"keys": [jwk(RSA_KEY, "rsa-1"), jwk(EC_KEY, "ec-1")]}


# ---------------------------------------------------------------- the issuer


class Issuer:
    """State of the local identity provider: what it serves and how often it was asked."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hits = Counter()
        self.reset()

    def reset(self):
        self.jwks = json.loads(json.dumps(DEFAULT_JWKS))
        self.down = False
        self.delay = 0.0
        self.discovery_issuer = None  # None: the real issuer URL
        self.hits.clear()

    def hit(self, name):
        with self.lock:
            self.hits[name] += 1


def issuer_app(state: Issuer) -> Flask:
    app = Flask("test_issuer")

    @app.get("/realms/test/.well-known/openid-configuration")
    def discovery():
        state.hit("discovery")
        if state.down:
            return jsonify(error="down"), 503
        if state.delay:
            time.sleep(state.delay)
        return jsonify(issuer=state.discovery_issuer or state.url, jwks_uri=state.url + "/protocol/certs",
                       id_token_signing_alg_values_supported=["RS256", "ES256", "PS256"])

    @app.get("/realms/test/protocol/certs")
    def certs():
        state.hit("jwks")
        if state.down:
            return jsonify(error="down"), 503
        return jsonify(state.jwks)

    return app


@pytest.fixture(scope="module")
def issuer_server():
    state = Issuer()
    with ServerThread(issuer_app(state)) as server:
        state.url = server.url + "/realms/test"  # a path issuer, like Keycloak's
        yield state


@pytest.fixture
def issuer(issuer_server):
    issuer_server.reset()
    yield issuer_server
    issuer_server.reset()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(oidc, "monotonic", fake)
    return fake


@pytest.fixture
def client(make_app, issuer, clock):
    return make_app(AUTH_MODE="oidc", OIDC_ISSUER=issuer.url, OIDC_AUDIENCE=AUDIENCE).test_client()


# ---------------------------------------------------------------- tokens


def b64(data) -> str:
    if not isinstance(data, bytes):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(issuer_url, **overrides) -> dict:
    now = int(time.time())
    body = {"iss": issuer_url, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def token(issuer_url, key=RSA_KEY, kid="rsa-1", alg="RS256", **overrides) -> str:
    return jwt.encode(claims(issuer_url, **overrides), key, algorithm=alg, headers={"kid": kid})


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


def create(client, value):
    return client.post("/api/clients", json={"email": "a@example.com"}, headers=bearer(value))


def lookup(client, value):
    return client.get("/api/clients/by-hash/x", headers=bearer(value))


def assert_error(response, status, detail=None):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    if detail is not None:
        assert body["detail"] == detail
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


def assert_refused(client, value, detail="Invalid token"):
    assert_error(lookup(client, value), 401, detail)


# ---------------------------------------------------------------- accepted


@pytest.mark.parametrize("key,kid,alg", [(RSA_KEY, "rsa-1", "RS256"), (EC_KEY, "ec-1", "ES256"),
                                         (RSA_KEY, "rsa-1", "PS256")])
def test_valid_token_is_accepted(client, issuer, key, kid, alg):
    r = create(client, token(issuer.url, key=key, kid=kid, alg=alg))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["email"] == "a@example.com"
    assert_error(lookup(client, token(issuer.url, key=key, kid=kid, alg=alg)), 404)


def test_audience_list_containing_ours_is_accepted(client, issuer):
    assert lookup(client, token(issuer.url, aud=["other-api", AUDIENCE])).status_code == 404


def test_within_leeway_is_accepted(client, issuer):
    now = int(time.time())
    assert lookup(client, token(issuer.url, exp=now - 30)).status_code == 404
    assert lookup(client, token(issuer.url, nbf=now + 30, iat=now)).status_code == 404


def test_discovery_and_jwks_are_fetched_once_and_cached(client, issuer):
    for _ in range(3):
        assert lookup(client, token(issuer.url)).status_code == 404
        assert lookup(client, token(issuer.url, key=EC_KEY, kid="ec-1", alg="ES256")).status_code == 404
    assert issuer.hits == {"discovery": 1, "jwks": 1}


# ---------------------------------------------------------------- refused


def test_expired(client, issuer):
    assert_refused(client, token(issuer.url, exp=int(time.time()) - 120), "Token expired")


def test_not_yet_valid(client, issuer):
    assert_refused(client, token(issuer.url, nbf=int(time.time()) + 120), "Token not yet valid")


BAD_CLAIMS = [
    {"aud": "another-api"},
    {"aud": ["another-api"]},
    {"aud": None},
    {"iss": "https://evil.example.com/realms/test"},
    {"iss": None},
    {"exp": None},
    {"exp": "soon"},
    {"sub": None},
    {"sub": ""},
]


def test_bad_claims(client, issuer):
    for overrides in BAD_CLAIMS:
        assert_refused(client, token(issuer.url, **overrides))


def test_issuer_with_a_trailing_slash_is_another_issuer(client, issuer):
    assert_refused(client, token(issuer.url + "/"))


def test_tampered_payload(client, issuer):
    header, _, signature = token(issuer.url).split(".")
    forged = b64(claims(issuer.url, sub="admin"))
    assert_refused(client, f"{header}.{forged}.{signature}")


def test_alg_none(client, issuer):
    body = b64(claims(issuer.url))
    for alg in ("none", "None", "NONE"):
        assert_refused(client, f"{b64({'alg': alg, 'kid': 'rsa-1', 'typ': 'JWT'})}.{body}.")
        assert_refused(client, f"{b64({'alg': alg, 'kid': 'rsa-1', 'typ': 'JWT'})}.{body}")


def test_hs256_signed_with_the_public_key_is_refused(client, issuer):
    """Algorithm confusion: the RSA public key (PEM, and its JWK JSON) used as an HMAC secret."""
    assert lookup(client, token(issuer.url)).status_code == 404  # the key is loaded and trusted
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    der = RSA_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    secrets = [pem, pem.strip(), der, json.dumps(jwk(RSA_KEY, "rsa-1")).encode()]
    for alg, digest in (("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
        for secret in secrets:
            signing_input = f"{b64({'alg': alg, 'kid': 'rsa-1', 'typ': 'JWT'})}.{b64(claims(issuer.url))}"
            signature = b64(hmac.new(secret, signing_input.encode(), digest).digest())
            assert_refused(client, f"{signing_input}.{signature}")


def test_algorithms_outside_the_allowlist(client, issuer):
    p384 = ec.generate_private_key(ec.SECP384R1())
    for key, kid, alg in ((RSA_KEY, "rsa-1", "RS384"), (RSA_KEY, "rsa-1", "RS512"), (RSA_KEY, "rsa-1", "PS512"),
                          (p384, "ec-1", "ES384")):
        assert_refused(client, token(issuer.url, key=key, kid=kid, alg=alg))


def test_algorithm_must_fit_the_key_type(client, issuer):
    # An RS256 header naming the EC key, an ES256 header naming the RSA key: refused before any crypto.
    assert_refused(client, token(issuer.url, key=RSA_KEY, kid="ec-1", alg="RS256"))
    assert_refused(client, token(issuer.url, key=EC_KEY, kid="rsa-1", alg="ES256"))


def test_jwk_alg_pins_the_algorithm(client, issuer):
    issuer.jwks = {"keys": [jwk(RSA_KEY, "rsa-1", alg="RS256")]}
    assert lookup(client, token(issuer.url, alg="RS256")).status_code == 404
    assert_refused(client, token(issuer.url, alg="PS256"))


def test_symmetric_and_encryption_keys_in_the_jwks_are_ignored(client, issuer):
    secret = b"shared-secret-that-is-long-enough-for-hs256"
    issuer.jwks = {"keys": [
        {"kty": "oct", "kid": "oct-1", "k": b64(secret)},
        {**jwk(RSA_KEY_2, "enc-1"), "use": "enc"},
        jwk(RSA_KEY, "rsa-1"),
    ]}
    assert_refused(client, jwt.encode(claims(issuer.url), secret, algorithm="HS256", headers={"kid": "oct-1"}))
    assert_refused(client, token(issuer.url, key=RSA_KEY_2, kid="enc-1"))
    assert lookup(client, token(issuer.url)).status_code == 404


GARBAGE = [
    "garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJSUzI1NiJ9", "eyJhbGciOiJSUzI1NiJ9.e30.",
    b64([1, 2]) + "." + b64({}) + ".x", b64({"alg": "RS256", "kid": ["rsa-1"]}) + "." + b64({}) + ".x",
    b64({"alg": "RS256", "kid": {"a": 1}}) + "." + b64({}) + ".x", b64({"alg": "RS256"}) + "." + b64({}) + ".x",
    b64({"alg": ["RS256"], "kid": "rsa-1"}) + "." + b64({}) + ".x", "x" * 20000,
]


def test_garbage_token(client, issuer):
    for value in GARBAGE:
        assert_refused(client, value)


def test_payload_that_is_not_an_object(client, issuer):
    header = b64({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"})
    for payload in ([1, 2], "text", 42):
        signing_input = f"{header}.{b64(payload)}"
        signature = b64(jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).sign(
            signing_input.encode(), RSA_KEY))
        assert_refused(client, f"{signing_input}.{signature}")


def test_missing_or_non_bearer_authorization(client, issuer):
    assert_error(client.get("/api/clients/by-hash/x"), 401, "Not authenticated")
    assert_error(client.get("/api/clients/by-hash/x", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)
    assert_error(client.post("/api/clients", json={"email": "a@example.com"}), 401)
    assert issuer.hits == {}


# ---------------------------------------------------------------- the JWKS cache


def test_unknown_kid_refetches_at_most_once_per_interval(client, issuer, clock):
    assert lookup(client, token(issuer.url)).status_code == 404
    assert issuer.hits["jwks"] == 1
    clock.advance(61)
    for _ in range(20):
        assert_refused(client, token(issuer.url, key=ROGUE_KEY, kid=uuid.uuid4().hex))
    assert issuer.hits["jwks"] == 2  # one refetch for the whole flood
    clock.advance(30)
    assert_refused(client, token(issuer.url, key=ROGUE_KEY, kid=uuid.uuid4().hex))
    assert issuer.hits["jwks"] == 2
    clock.advance(31)
    assert_refused(client, token(issuer.url, key=ROGUE_KEY, kid=uuid.uuid4().hex))
    assert issuer.hits["jwks"] == 3
    assert issuer.hits["discovery"] == 1
    assert lookup(client, token(issuer.url)).status_code == 404  # known keys still work throughout


def test_concurrent_unknown_kids_share_one_refetch(issuer, clock):
    verifier = oidc.OIDCVerifier(issuer.url, AUDIENCE)
    assert verifier.verify(token(issuer.url))["sub"] == "user-1"
    clock.advance(61)
    codes = []

    def attempt(kid):
        try:
            verifier.verify(token(issuer.url, key=ROGUE_KEY, kid=kid))
        except HTTPException as exc:
            codes.append(exc.code)

    threads = [threading.Thread(target=attempt, args=(f"kid-{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert codes == [401] * 16
    assert issuer.hits == {"discovery": 1, "jwks": 2}


def test_known_kid_signed_by_another_key_is_refused(client, issuer):
    assert_refused(client, token(issuer.url, key=ROGUE_KEY, kid="rsa-1"))


def test_key_rotation(client, issuer, clock):
    old = token(issuer.url)
    assert lookup(client, old).status_code == 404
    issuer.jwks = {"keys": [jwk(RSA_KEY_2, "rsa-2")]}  # rotated: rsa-2 added, rsa-1 removed
    new = token(issuer.url, key=RSA_KEY_2, kid="rsa-2")
    assert lookup(client, old).status_code == 404  # cached: no refetch for a known kid
    clock.advance(61)
    assert lookup(client, new).status_code == 404  # unknown kid: refetched, picked up
    assert issuer.hits["jwks"] == 2
    assert_refused(client, old)  # gone after the refresh
    clock.advance(61)
    assert_refused(client, old)  # refetch on its unknown kid: still gone
    assert issuer.hits["jwks"] == 3
    assert lookup(client, new).status_code == 404


def test_new_kid_right_after_a_fetch_waits_for_the_interval(client, issuer, clock):
    assert lookup(client, token(issuer.url)).status_code == 404
    issuer.jwks["keys"].append(jwk(RSA_KEY_2, "rsa-2"))
    new = token(issuer.url, key=RSA_KEY_2, kid="rsa-2")
    assert_refused(client, new)
    clock.advance(60)
    assert lookup(client, new).status_code == 404
    assert issuer.hits["jwks"] == 2


def test_removed_key_goes_away_when_the_cache_is_old(client, issuer, clock):
    old = token(issuer.url)
    assert lookup(client, old).status_code == 404
    issuer.jwks = {"keys": [jwk(EC_KEY, "ec-1")]}
    clock.advance(3599)
    assert lookup(client, old).status_code == 404
    clock.advance(2)
    assert_refused(client, old)
    assert issuer.hits["jwks"] == 2


def test_failed_refresh_keeps_the_cached_keys(client, issuer, clock):
    assert lookup(client, token(issuer.url)).status_code == 404
    issuer.down = True
    clock.advance(61)
    assert_refused(client, token(issuer.url, key=ROGUE_KEY, kid="rsa-9"))  # refetch fails: unknown kid stays 401
    assert issuer.hits["jwks"] == 2
    assert lookup(client, token(issuer.url)).status_code == 404
    clock.advance(3600)  # stale, and the issuer still down: keep serving from the old keys
    assert lookup(client, token(issuer.url)).status_code == 404


# ---------------------------------------------------------------- the issuer unavailable


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/realms/test"


def verifier_abort(verifier, value):
    with Flask(__name__).test_request_context():
        with pytest.raises(HTTPException) as info:
            verifier.verify(value)
    return info.value.code, info.value.data["message"]


def test_app_starts_with_the_issuer_down_and_verify_answers_503(make_app, clock):
    url = closed_port_url()
    app = make_app(AUTH_MODE="oidc", OIDC_ISSUER=url, OIDC_AUDIENCE=AUDIENCE)  # no fetch at start
    verifier = app.extensions["clobus_oidc"]
    assert verifier_abort(verifier, token(url)) == (503, "Identity provider unavailable")
    assert verifier_abort(verifier, "garbage") == (401, "Invalid token")  # no network needed to refuse it


def test_issuer_unreachable_is_503_over_http(make_app, clock):
    url = closed_port_url()
    client = make_app(AUTH_MODE="oidc", OIDC_ISSUER=url, OIDC_AUDIENCE=AUDIENCE).test_client()
    assert_error(lookup(client, token(url)), 503, "Identity provider unavailable")
    assert_error(create(client, token(url)), 503, "Identity provider unavailable")


def test_issuer_down_then_back(make_app, issuer, clock):
    issuer.down = True
    app = make_app(AUTH_MODE="oidc", OIDC_ISSUER=issuer.url, OIDC_AUDIENCE=AUDIENCE)
    verifier = app.extensions["clobus_oidc"]
    assert issuer.hits == {}
    assert verifier_abort(verifier, token(issuer.url)) == (503, "Identity provider unavailable")
    assert verifier_abort(verifier, token(issuer.url)) == (503, "Identity provider unavailable")
    assert issuer.hits["discovery"] == 1  # the second one did not wait on the issuer again
    issuer.down = False
    clock.advance(5)
    assert lookup(app.test_client(), token(issuer.url)).status_code == 404
    assert issuer.hits == {"discovery": 2, "jwks": 1}


def test_issuer_timeout_is_503(issuer, clock):
    issuer.delay = 1.0
    verifier = oidc.OIDCVerifier(issuer.url, AUDIENCE, timeout=0.2)
    started = time.monotonic()
    assert verifier_abort(verifier, token(issuer.url)) == (503, "Identity provider unavailable")
    assert time.monotonic() - started < 0.9


def test_discovery_naming_another_issuer_is_refused(client, issuer):
    issuer.discovery_issuer = "https://evil.example.com/realms/test"
    assert_error(lookup(client, token(issuer.url)), 503, "Identity provider unavailable")
    assert issuer.hits["jwks"] == 0


def test_the_token_is_not_logged(client, issuer, clock, caplog):
    caplog.set_level("DEBUG")
    secret_tokens = [token(issuer.url, exp=int(time.time()) - 120), token(issuer.url, key=ROGUE_KEY, kid="rogue")]
    for value in secret_tokens:
        assert_refused(client, value, None)
    issuer.down = True
    clock.advance(61)
    assert_refused(client, token(issuer.url, key=ROGUE_KEY, kid="rogue-2"))
    for value in secret_tokens:
        for part in value.split("."):
            assert part not in caplog.text
