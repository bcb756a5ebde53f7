"""Hostile input, case by case: whatever arrives, the answer is below 500 with a string ``detail`` on errors,
free text is stored and returned literally, and a request that fails writes nothing at all.

test_validation.py covers the ordinary validation errors; this file is about input meant to break things:
SQL injection strings, oversized and deeply nested bodies, broken encodings, NUL bytes, look-alike emails, odd
numbers, duplicate keys, wrong JSON types and hostile headers. The last tests go over real HTTP (gunicorn).

Many small cases share one app (and one test) to keep the file fast; each such test collects every failing case
before it fails, so one run shows them all.
"""
import io
import json
import unicodedata
import uuid
from urllib.parse import quote

import pytest
import requests

from clobus_consult.db import db
from clobus_consult.models import MODELS

from .conftest import AUTH, TOKEN
from .processes import gunicorn

JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}
LIMIT = 64 * 1024  # MAX_CONTENT_LENGTH (contract.md: "413 — body over the limit (default 64 KiB)")
MB = 1 << 20

INJECTIONS = [
    "' OR 1=1 --",
    '"; DROP TABLE client; --',
    "%' UNION SELECT id, email, phone_number FROM client --",
    "1); DELETE FROM consultation; --",
    "\\'; DROP TABLE sync_task; --",
    "' || (SELECT sqlite_version()) || '",
    "admin'/* $1 ? :name %s {0} */",
    "'; SELECT pg_sleep(5); --",
]
CLIENT_TEXT = ("country", "region", "city", "org_id", "subs_id", "tariff_id", "tariffperiod_id", "client_id_hash")
CLIENT_VALIDATED = ("email", "phone_number", "org_inn", "cl_ref_key", "client_id", "subs_start", "subs_end")
CONSULTATION_TEXT = ("comment", "topic")
CONSULTATION_VALIDATED = ("lang", "online_question_cat", "online_question", "org_inn", "cl_ref_key", "client_id",
                          "scheduled_at")
ALL_CLIENT_FIELDS = CLIENT_TEXT + CLIENT_VALIDATED
ALL_CONSULTATION_FIELDS = CONSULTATION_TEXT + CONSULTATION_VALIDATED + ("importance",)
PATH_PARAMS = [("/api/clients/{}", "Client not found"), ("/api/clients/by-hash/{}", "Client not found"),
               ("/api/tickets/{}", "Ticket not found"), ("/api/tickets/clients/{}/tickets", "Client not found")]


# --- helpers -----------------------------------------------------------------------------------------------------

def post(client, path, body=None, *, raw=None, headers=None):
    data = raw if raw is not None else json.dumps(body)
    return client.post(path, data=data, headers={**JSON_HEADERS, **(headers or {})})


def get(client, path, headers=None):
    return client.get(path, headers={**AUTH, **(headers or {})})


def show(r) -> str:
    return f"{r.status_code} {r.get_data(as_text=True)[:300]!r}"


def error_problem(r, *statuses) -> str | None:
    """Why ``r`` is not a 4xx (one of ``statuses`` if given) with a string ``detail``; None if it is."""
    if not 400 <= r.status_code < 500 or (statuses and r.status_code not in statuses):
        return f"expected {statuses or '4xx'}, got {show(r)}"
    body = r.get_json(silent=True)
    if not (isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"]):
        return f"no string detail: {show(r)}"
    return None


def assert_error(r, *statuses):
    problem = error_problem(r, *statuses)
    assert problem is None, problem
    return r.get_json()


def assert_sane(r):
    """Any answer but a 5xx; an error one has the ``detail`` shape."""
    assert r.status_code < 500, show(r)
    if r.status_code >= 400:
        assert_error(r)


class Problems(list):
    """Collects failing cases of a loop, so that one run reports all of them."""

    def error(self, label, r, *statuses, field=None, where=()):
        problem = error_problem(r, *statuses)
        if problem is None and field is not None:
            node = r.get_json().get("errors", {}).get("json", {})
            for key in where:
                node = node.get(key, {}) if isinstance(node, dict) else {}
            if not (isinstance(node, dict) and field in node):
                problem = f"{field!r} not named in the errors: {show(r)}"
        if problem:
            self.append(f"{label}: {problem}")

    def check(self, label, ok, r=None):
        if not ok:
            self.append(f"{label}: {show(r) if r is not None else 'failed'}")

    def verify(self):
        assert not self, f"{len(self)} failing case(s):\n" + "\n".join(self[:40])


def rows(app) -> dict[str, int]:
    """Row count of every table: equal before and after a failed request means nothing was written."""
    with app.app_context(), db.connection_context():
        return {m._meta.table_name: m.select().count() for m in MODELS}


def assert_tables_intact(app) -> None:
    with app.app_context(), db.connection_context():
        present = set(db.get_tables())
    assert {m._meta.table_name for m in MODELS} <= present, present


def new_client(client, **fields):
    fields.setdefault("email", f"{uuid.uuid4().hex[:12]}@example.com")
    r = post(client, "/api/clients", fields)
    assert r.status_code == 200, show(r)
    return r.get_json()


# --- SQL injection -----------------------------------------------------------------------------------------------

def test_injection_in_client_text_fields_is_stored_literally(app, client):
    before = new_client(client, city="Tashkent")
    problems = Problems()
    for n, s in enumerate(INJECTIONS):
        body = {"email": f"inj{n}@example.com", **{name: s for name in CLIENT_TEXT}}
        r = post(client, "/api/clients", body)
        if r.status_code != 200:
            problems.append(f"{s!r}: {show(r)}")
            continue
        stored = r.get_json()
        problems.check(f"{s!r} stored", {name: stored[name] for name in CLIENT_TEXT} == {n: s for n in CLIENT_TEXT}, r)
        problems.check(f"{s!r} read back", get(client, f"/api/clients/{stored['client_id']}").get_json() == stored)
        by_hash = get(client, "/api/clients/by-hash/" + quote(s, safe=""))
        problems.check(f"{s!r} by hash", by_hash.get_json().get("client_id") == stored["client_id"], by_hash)
        again = post(client, "/api/clients", body)  # found again by its hash, not duplicated
        problems.check(f"{s!r} again", again.get_json().get("client_id") == stored["client_id"], again)
    problems.verify()
    assert get(client, f"/api/clients/{before['client_id']}").get_json() == before
    assert_tables_intact(app)
    assert rows(app)["client"] == 1 + len(INJECTIONS)


def test_injection_in_consultation_text_fields_is_stored_literally(app, client):
    problems = Problems()
    for n, s in enumerate(INJECTIONS):
        r = post(client, "/api/consultations/create", {
            "client": {"email": f"inj{n}@example.com", "city": s, "region": s, "client_id_hash": s},
            "consultation": {"comment": s, "topic": s, "lang": "uz"},
        })
        if r.status_code != 200:
            problems.append(f"{s!r}: {show(r)}")
            continue
        body = r.get_json()
        consultation = body["consultation"]
        problems.check(f"{s!r} stored", (consultation["comment"], consultation["topic"]) == (s, s), r)
        ticket = get(client, f"/api/tickets/{consultation['consultation_id']}").get_json()
        problems.check(f"{s!r} ticket", (ticket.get("comment"), ticket.get("topic")) == (s, s))
        stored_client = get(client, f"/api/clients/{body['client_id']}").get_json()
        problems.check(f"{s!r} client", (stored_client.get("city"), stored_client.get("region"),
                                         stored_client.get("client_id_hash")) == (s, s, s))
        r = post(client, "/api/consultations/simple", {"client_id": body["client_id"], "comment": s, "topic": s + "2"})
        problems.check(f"{s!r} simple", r.status_code == 200 and r.get_json()["consultation"]["comment"] == s, r)
        listed = get(client, f"/api/tickets/clients/{body['client_id']}/tickets").get_json()
        problems.check(f"{s!r} list", listed.get("total") == 2 and {t["comment"] for t in listed["tickets"]} == {s})
    problems.verify()
    assert_tables_intact(app)
    assert rows(app)["consultation"] == 2 * len(INJECTIONS)


def test_injection_in_validated_fields_is_refused(app, client):
    existing = new_client(client)
    counts = rows(app)
    problems = Problems()
    for s in INJECTIONS:
        for name in CLIENT_VALIDATED:
            problems.error(f"clients {name}={s!r}", post(client, "/api/clients", {"email": "a@example.com", name: s}),
                           422, field=name)
            r = post(client, "/api/consultations/create",
                     {"client": {"email": "a@example.com", name: s}, "consultation": {"comment": "x"}})
            problems.error(f"create client.{name}={s!r}", r, 422, field=name, where=("client",))
        for name in CONSULTATION_VALIDATED:
            r = post(client, "/api/consultations/create",
                     {"client": {"email": "a@example.com"}, "consultation": {"comment": "x", name: s}})
            problems.error(f"create consultation.{name}={s!r}", r, 422, field=name, where=("consultation",))
            r = post(client, "/api/consultations/simple", {"client_id": existing["client_id"], "comment": "x", name: s})
            problems.error(f"simple {name}={s!r}", r, 422, field=name)
        r = post(client, "/api/consultations/create",
                 {"client": {"email": "a@example.com"}, "consultation": {"comment": "x"}, "source": s})
        problems.error(f"create source={s!r}", r, 422, field="source")
        r = post(client, "/api/consultations/simple", {"client_id": existing["client_id"], "comment": "x", "source": s})
        problems.error(f"simple source={s!r}", r, 422, field="source")
    problems.verify()
    assert rows(app) == counts
    assert_tables_intact(app)


def test_injection_in_path_and_query(app, client):
    made = post(client, "/api/consultations/create",
                {"client": {"email": "a@example.com"}, "consultation": {"comment": "x"}}).get_json()
    problems = Problems()
    for s in INJECTIONS:
        q = quote(s, safe="")
        for template, detail in PATH_PARAMS:
            r = get(client, template.format(q))
            problems.error(f"{template} {s!r}", r, 404)
            # A "/" in the value (sent as %2F, decoded by WSGI) can make the path match no route at all: plain 404.
            found = (r.get_json(silent=True) or {}).get("detail")
            problems.check(f"{template} {s!r} detail", found == detail or ("/" in s and found == "Not found"), r)
        for param in ("skip", "limit"):
            r = get(client, f"/api/tickets/clients/{made['client_id']}/tickets?{param}={q}")
            problems.error(f"{param}={s!r}", r, 422)
    problems.verify()
    # Everything is still there.
    assert get(client, f"/api/clients/{made['client_id']}").status_code == 200
    assert get(client, f"/api/tickets/clients/{made['client_id']}/tickets").get_json()["total"] == 1
    assert_tables_intact(app)


# --- size ----------------------------------------------------------------------------------------------------------

def test_one_megabyte_bodies_are_413(app, client):
    counts = rows(app)
    bodies = [
        ("/api/clients", {"email": "a@example.com", "city": "x" * MB}),
        ("/api/clients", {"email": "a@example.com", "client_id_hash": "h" * MB}),
        ("/api/clients", {"email": "a@example.com", "x" * MB: 1}),
        ("/api/consultations/create", {"client": {"email": "a@example.com"}, "consultation": {"comment": "к" * MB}}),
        ("/api/consultations/create", {"client": {"email": "a@example.com", "region": "x" * MB},
                                       "consultation": {"comment": "x"}}),
        ("/api/consultations/create", {"client": {"email": "a@example.com"}, "consultation": {"comment": "x"},
                                       "padding": ["x"] * (MB // 4)}),
        ("/api/consultations/simple", {"client_id": str(uuid.uuid4()), "comment": "x", "topic": "x" * MB}),
    ]
    problems = Problems()
    for n, (path, body) in enumerate(bodies):
        r = post(client, path, body)
        problems.error(f"body {n} to {path}", r, 413)
        problems.check(f"body {n} detail", (r.get_json(silent=True) or {}).get("detail") == "Request body too large")
    for raw in (b'{"email": "a@example.com"}' + b" " * MB, b"\xff" * MB, b"[" * MB, b"\x00" * MB):
        problems.error(f"raw {raw[:12]!r}", post(client, "/api/clients", raw=raw), 413)
    problems.verify()
    assert rows(app) == counts


def test_one_megabyte_in_path_and_query(client):
    client_id = new_client(client)["client_id"]
    for path in ("/api/clients/by-hash/" + "h" * MB, "/api/tickets/" + "9" * MB, "/api/clients/" + "a" * MB,
                 f"/api/tickets/clients/{client_id}/tickets?skip=" + "9" * MB,
                 f"/api/tickets/clients/{client_id}/tickets?limit=1&x=" + "y" * MB):
        assert_sane(get(client, path))


@pytest.mark.parametrize("raw", [
    b'{"email": "chunked@example.com"}' + b" " * MB,  # valid JSON in the first 64 KiB, then padding
    b'{"email": "chunked@example.com", "city": "' + b"x" * MB + b'"}',
], ids=["valid-prefix", "one-big-string"])
def test_chunked_body_over_the_limit_is_413(app, client, raw):
    """A body without Content-Length (Transfer-Encoding: chunked, which gunicorn hands on with
    ``wsgi.input_terminated``) is held to the same limit: 413, not silently cut to its first 64 KiB and parsed."""
    counts = rows(app)
    r = client.post("/api/clients", input_stream=io.BytesIO(raw),
                    headers={**JSON_HEADERS, "Transfer-Encoding": "chunked"},
                    environ_overrides={"wsgi.input_terminated": True})
    assert assert_error(r, 413)["detail"] == "Request body too large"
    assert rows(app) == counts


NESTED = [  # (path, body around the nested value, opening, closing, innermost)
    ("/api/clients", '{"email": "a@example.com", "city": %s}', "[", "]", ""),
    ("/api/clients", '{"email": "a@example.com", "deep": %s}', '{"k":', "}", "1"),
    ("/api/consultations/create", '{"client": {"email": "a@example.com"}, "consultation": {"comment": "x", '
                                  '"topic": %s}}', '[{"a":', "}]", "null"),
    ("/api/consultations/create", '{"client": %s, "consultation": {"comment": "x"}}',
     '{"email": "a@example.com", "city":', "}", '"x"'),
    ("/api/consultations/simple", "%s", "[", "]", '{"comment": "x"}'),
]


def test_deeply_nested_json_just_under_the_limit(app, client):
    counts = rows(app)
    problems = Problems()
    for path, around, opening, closing, inner in NESTED:
        budget = LIMIT - 200 - len(around) - len(inner)
        depth = budget // len((opening + closing).encode())
        raw = around % (opening * depth + inner + closing * depth)
        assert LIMIT - 1024 < len(raw.encode()) <= LIMIT
        problems.error(f"{path} {opening}x{depth}", post(client, path, raw=raw), 400, 422)
        for depth in (10, 100, 500):  # shallow enough to parse: a validation error, not a crash
            raw = around % (opening * depth + inner + closing * depth)
            problems.error(f"{path} {opening}x{depth}", post(client, path, raw=raw), 400, 422)
    problems.verify()
    assert rows(app) == counts


# --- encodings and NUL ---------------------------------------------------------------------------------------------

BAD_UTF8 = [b"\xff\xfe", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80",
            b"\xf4\x90\x80\x80"]


def test_invalid_utf8_in_body(app, client):
    client_id = new_client(client)["client_id"].encode()
    counts = rows(app)
    problems = Problems()
    for bad in BAD_UTF8:
        for path, raw in [
            ("/api/clients", b'{"email": "a@example.com", "city": "a' + bad + b'b"}'),
            ("/api/clients", b'{"email": "a@example.com", "ci' + bad + b'ty": "x"}'),
            ("/api/clients", b'{"email": "a@example.com"}' + bad),
            ("/api/consultations/create", b'{"client": {"email": "a@example.com"}, "consultation": {"comment": "'
             + bad + b'"}}'),
            ("/api/consultations/create", b'{"client": {"email": "a@' + bad + b'example.com"}, '
                                          b'"consultation": {"comment": "x"}}'),
            ("/api/consultations/create", b'{"client": {"email": "a@example.com"}, "consultation": {"comment": "x"}, "'
             + bad + b'": 1}'),
            ("/api/consultations/simple", b'{"client_id": "' + client_id + b'", "comment": "' + bad + b'"}'),
            ("/api/consultations/simple", bad + b'{"client_id": "' + client_id + b'", "comment": "x"}'),
        ]:
            problems.error(f"{path} {raw[:70]!r}", post(client, path, raw=raw), 400)
    problems.verify()
    assert rows(app) == counts


def test_lone_surrogates_and_nul_escapes_in_body(app, client):
    client_id = new_client(client)["client_id"]
    counts = rows(app)
    problems = Problems()
    templates = {
        "/api/clients": '{"email": "a@example.com", "city": "%s"}',
        "/api/consultations/create": '{"client": {"email": "a@example.com"}, "consultation": {"comment": "%s"}}',
        "/api/consultations/simple": '{"client_id": "' + client_id + '", "comment": "%s"}',
    }
    for path, template in templates.items():
        for escape in ("\\ud800", "\\udfff", "\\udc80x", "\\ud800\\u0041", "\\u0000", "a\\u0000"):
            problems.error(f"{path} value {escape}", post(client, path, raw=template % escape), 422)
            problems.error(f"{path} key {escape}", post(client, path, raw='{"' + escape + '": "x"}'), 422)
    problems.verify()
    assert rows(app) == counts


def test_nul_in_every_text_field(app, client):
    existing = new_client(client)
    counts = rows(app)
    problems = Problems()
    for name in ALL_CLIENT_FIELDS:
        problems.error(f"clients {name}", post(client, "/api/clients", {"email": "a@example.com", name: "a\x00b"}), 422)
        r = post(client, "/api/consultations/create",
                 {"client": {"email": "a@example.com", name: "\x00"}, "consultation": {"comment": "x"}})
        problems.error(f"create client.{name}", r, 422)
    for name in CONSULTATION_TEXT + CONSULTATION_VALIDATED:
        r = post(client, "/api/consultations/create",
                 {"client": {"email": "a@example.com"}, "consultation": {"comment": "x", name: "x\x00"}})
        problems.error(f"create consultation.{name}", r, 422)
        r = post(client, "/api/consultations/simple",
                 {"client_id": existing["client_id"], "comment": "x", name: "\x00"})
        problems.error(f"simple {name}", r, 422)
    r = post(client, "/api/consultations/create",
             {"client": {"email": "a@example.com"}, "consultation": {"comment": "x"}, "source": "SITE\x00"})
    problems.error("create source", r, 422)
    problems.verify()
    assert rows(app) == counts


HOSTILE_SEGMENTS = ["a%00b", "%00", "%00" * 40, "known%00", "%ff%fe", "%80", "%c0%af", "%ed%a0%80", "%f4%90%80%80",
                    "%e2%82", "x%00%ff%ed%a0%80"]


def test_nul_and_invalid_utf8_in_path_parameters(client):
    """Every path parameter, with NUL and broken UTF-8 percent-encoded: the documented 404, never a 500.

    On PostgreSQL a NUL that reaches a query parameter is a psycopg2 ValueError ("A string literal cannot contain
    NUL (0x00) characters") unless the view refuses it first.
    """
    new_client(client, client_id_hash="known")
    problems = Problems()
    for template, detail in PATH_PARAMS:
        for segment in HOSTILE_SEGMENTS:
            path = template.format(segment)
            r = get(client, path)
            problems.error(path, r, 404)
            problems.check(f"{path} detail", (r.get_json(silent=True) or {}).get("detail") == detail, r)
    problems.verify()


def test_nul_and_invalid_utf8_in_query(client):
    client_id = new_client(client)["client_id"]
    for value in ("%00", "1%00", "%ff", "%ed%a0%80", "%c0%af"):
        for param in ("skip", "limit"):
            r = get(client, f"/api/tickets/clients/{client_id}/tickets?{param}={value}")
            assert param in assert_error(r, 422)["errors"]["query"]
    r = get(client, f"/api/tickets/clients/{client_id}/tickets?%00=1&%ff=%ff")
    assert r.status_code == 200, show(r)


# --- look-alike emails ---------------------------------------------------------------------------------------------

LOOKALIKES = [
    "user@exаmple.com",  # Cyrillic а in the domain
    "usеr@example.com",  # Cyrillic е in the local part
    "user＠example.com",  # fullwidth commercial at
    "user﹫example.com",  # small commercial at
    "us\u200der@example.com",  # zero-width joiner
    "user@exam\u200dple.com",
    "\u200buser@example.com",  # zero-width space
    "user@example.com\u200b",
    "user@exam\u00adple.com",  # soft hyphen
    "user@\u202eelpmaxe.com",  # right-to-left override
    "user@ｅｘａｍｐｌｅ.com",  # fullwidth domain
    "ｕser@example.com",  # fullwidth local part
    "user@example\u3002com",  # ideographic full stop
    "user@xn--exmple-4nf.com",  # punycode of the Cyrillic look-alike
    "user@пример.рф",
    "USER@ПРИМЕР.РФ",
    "user@e\u0301xample.com",  # combining accent
    "user\u0301@example.com",
    "\ufeffuser@example.com",  # byte order mark
    "user@example.com\u00a0",  # no-break space
    "user@example.com\u3000",  # ideographic space
]


def _normalised(email: str) -> bool:
    return (email == email.strip().lower() and unicodedata.is_normalized("NFC", email) and email.count("@") == 1
            and all(unicodedata.category(ch) not in ("Cc", "Cf", "Zs", "Zl", "Zp", "Mn") for ch in email))


def test_lookalike_emails_are_refused_or_stored_normalised(app, client):
    latin = new_client(client, email="user@example.com", client_id_hash="latin")
    problems = Problems()
    for email in LOOKALIKES:
        for path, body, where in [
            ("/api/clients", {"email": email}, ()),
            ("/api/consultations/create", {"client": {"email": email}, "consultation": {"comment": "x"}}, ("client",)),
        ]:
            counts = rows(app)
            r = post(client, path, body)
            if r.status_code == 422:
                problems.error(f"{email!r} to {path}", r, 422, field="email", where=where)
                problems.check(f"{email!r} to {path} wrote something", rows(app) == counts)
                continue
            if r.status_code != 200:
                problems.append(f"{email!r} to {path}: {show(r)}")
                continue
            client_id = r.get_json()["client_id"]
            stored = get(client, f"/api/clients/{client_id}").get_json()["email"]
            problems.check(f"{email!r} stored as {stored!r}", _normalised(stored))
            # Normalisation is stable: the stored form finds the same client.
            again = post(client, "/api/clients", {"email": stored})
            problems.check(f"{email!r} stored form resolves elsewhere", again.get_json().get("client_id") == client_id,
                           again)
            # A look-alike is another address: it never lands on (or changes) the Latin client.
            problems.check(f"{email!r} merged with user@example.com",
                           stored == "user@example.com" or client_id != latin["client_id"])
    problems.verify()
    assert get(client, "/api/clients/by-hash/latin").get_json() == latin


def test_equivalent_email_spellings_are_one_client(client):
    ids = {post(client, "/api/clients", {"email": e}).get_json()["client_id"]
           for e in ("user@пример.рф", " USER@ПРИМЕР.РФ ", "user@xn--e1afmkfd.xn--p1ai", "User@Пример.Рф")}
    assert len(ids) == 1
    ids = {post(client, "/api/clients", {"email": e}).get_json()["client_id"]
           for e in ("user@example.com", "user@ｅｘａｍｐｌｅ.com", "user@example\u3002com", "USER@EXAMPLE.COM")}
    assert len(ids) == 1


# --- numbers, duplicate keys, wrong types --------------------------------------------------------------------------

PAGING = [  # (parameter, raw query value, allowed statuses)
    ("skip", str(10**30), {422}), ("limit", str(10**30), {422}), ("skip", "-1", {422}), ("limit", "-1", {422}),
    ("skip", "1e3", {422}), ("limit", "1e2", {422}), ("skip", "%205", {200, 422}), ("limit", "5%20", {200, 422}),
    ("skip", "+5", {200, 422}), ("skip", "0x10", {422}), ("skip", "1_000", {200, 422}), ("skip", "NaN", {422}),
    ("limit", "Infinity", {422}), ("limit", "-0", {422}), ("skip", "-0", {200, 422}), ("skip", "9" * 5000, {422}),
    ("limit", "%D9%A3", {200, 422}), ("skip", "", {200, 422}), ("limit", "", {200, 422}), ("skip", "1.0", {422}),
    ("skip", "[]", {422}), ("skip", "true", {422}), ("limit", "2147483648", {422}), ("skip", "2147483648", {422}),
    ("skip", "%2B%2B1", {422}), ("limit", "%0A5", {200, 422}),
]


def test_odd_paging_values(client):
    client_id = new_client(client)["client_id"]
    problems = Problems()
    for param, value, allowed in PAGING:
        r = get(client, f"/api/tickets/clients/{client_id}/tickets?{param}={value[:40]}" + value[40:])
        label = f"{param}={value[:20]!r}"
        if r.status_code == 200 and 200 in allowed:
            problems.check(label, r.get_json() == {"tickets": [], "total": 0}, r)
        elif r.status_code == 422 and 422 in allowed:
            problems.check(label, param in r.get_json().get("errors", {}).get("query", {}), r)
        else:
            problems.append(f"{label}: expected {allowed}, got {show(r)}")
    problems.verify()


HUGE_INT = "1" * 5000  # past Python's int-from-string limit (4300 digits): json.loads raises a plain ValueError


@pytest.mark.parametrize("path, raw", [
    ("/api/clients", '{"email": "a@example.com", "city": ' + HUGE_INT + "}"),
    ("/api/clients", HUGE_INT),
    ("/api/consultations/create", '{"client": {"email": "a@example.com"}, '
                                  '"consultation": {"comment": "x", "importance": ' + HUGE_INT + "}}"),
    ("/api/consultations/create", '{"client": {"email": "a@example.com"}, "consultation": {"comment": "x"}, '
                                  '"extra": [' + HUGE_INT + "]}"),
    ("/api/consultations/simple", '{"client_id": "' + str(uuid.uuid4()) + '", "comment": "x", "importance": -'
     + HUGE_INT + "}"),
], ids=["clients-field", "clients-top-level", "create-importance", "create-unknown-key", "simple-importance"])
def test_huge_integer_literals_are_4xx(app, client, path, raw):
    counts = rows(app)
    assert_error(post(client, path, raw=raw), 400, 422)
    assert rows(app) == counts


def test_other_odd_numbers(app, client):
    counts = rows(app)
    problems = Problems()
    for value in ("1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1.0", "2.0000000000000001", "-0", "3e0",
                  "0.3e1", "1" * 4000, "-" + "9" * 4000, "1E-400"):
        raw = '{"client": {"email": "a@example.com"}, "consultation": {"comment": "x", "importance": ' + value + "}}"
        r = post(client, "/api/consultations/create", raw=raw)
        problems.error(f"importance {value[:20]}", r, 422, field="importance", where=("consultation",))
    problems.verify()
    assert rows(app) == counts


def test_duplicate_json_keys_last_wins_or_4xx(client):
    def outcome(path, raw):
        r = post(client, path, raw=raw)
        assert_sane(r)
        return r

    r = outcome("/api/clients", '{"email": "first@example.com", "email": "last@example.com"}')
    if r.status_code == 200:
        assert r.get_json()["email"] == "last@example.com"
    r = outcome("/api/consultations/create", '{"client": {"email": "a@example.com"}, "consultation": '
                                             '{"comment": "first"}, "consultation": {"comment": "last"}}')
    if r.status_code == 200:
        assert r.get_json()["consultation"]["comment"] == "last"
    r = outcome("/api/consultations/create", '{"client": {"email": "a@example.com"}, "consultation": '
                                             '{"comment": "first", "comment": "final", "lang": "ru", "lang": "uz"}}')
    if r.status_code == 200:
        assert (r.get_json()["consultation"]["comment"], r.get_json()["consultation"]["lang"]) == ("final", "uz")
    # A valid value then an invalid one: the invalid one is what counts (or the whole body is refused).
    r = outcome("/api/consultations/create", '{"client": {"email": "a@example.com"}, '
                                             '"consultation": {"comment": "x", "importance": 2, "importance": "2"}}')
    assert r.status_code >= 400, show(r)
    r = outcome("/api/consultations/create", '{"client": {"email": "a@example.com"}, "client": 5, '
                                             '"consultation": {"comment": "x"}}')
    assert r.status_code >= 400, show(r)
    r = outcome("/api/clients", '{"email": "a@example.com", "client_id": "nope", "client_id": null}')
    assert r.status_code in (200, 400, 422), show(r)


WRONG_FOR_STRING = [1, 0, 1.5, True, False, [], ["x"], {}, {"a": "b"}, -0.0, 1e308]
WRONG_FOR_IMPORTANCE = ["2", True, False, 1.5, 2.0, [], [2], {}, {"v": 2}, "two", 10**20]


def test_wrong_types_in_client_fields(app, client):
    counts = rows(app)
    problems = Problems()
    for name in ALL_CLIENT_FIELDS:
        for value in WRONG_FOR_STRING:
            r = post(client, "/api/clients", {"email": "a@example.com", name: value})
            problems.error(f"clients {name}={value!r}", r, 422, field=name)
            r = post(client, "/api/consultations/create",
                     {"client": {"email": "a@example.com", name: value}, "consultation": {"comment": "x"}})
            problems.error(f"create client.{name}={value!r}", r, 422, field=name, where=("client",))
    problems.verify()
    assert rows(app) == counts


def test_wrong_types_in_consultation_fields(app, client):
    client_id = new_client(client)["client_id"]
    counts = rows(app)
    problems = Problems()
    for name in ALL_CONSULTATION_FIELDS:
        for value in WRONG_FOR_IMPORTANCE if name == "importance" else WRONG_FOR_STRING:
            r = post(client, "/api/consultations/create",
                     {"client": {"email": "a@example.com"}, "consultation": {"comment": "x", name: value}})
            problems.error(f"create consultation.{name}={value!r}", r, 422, field=name, where=("consultation",))
            r = post(client, "/api/consultations/simple", {"client_id": client_id, "comment": "x", name: value})
            problems.error(f"simple {name}={value!r}", r, 422, field=name)
    problems.verify()
    assert rows(app) == counts


def test_wrong_types_at_the_top_levels(app, client):
    client_id = new_client(client)["client_id"]
    counts = rows(app)
    problems = Problems()
    for value in [1, 1.5, True, "x", ["x"], [{"email": "a@example.com"}]]:
        for body, where in [({"client": value, "consultation": {"comment": "x"}}, "client"),
                            ({"client": {"email": "a@example.com"}, "consultation": value}, "consultation"),
                            ({"client": {"email": "a@example.com"}, "consultation": {"comment": "x"}, "source": value},
                             "source")]:
            problems.error(f"create {where}={value!r}", post(client, "/api/consultations/create", body), 422,
                           field=where)
        r = post(client, "/api/consultations/simple", {"client_id": client_id, "comment": "x", "source": value})
        problems.error(f"simple source={value!r}", r, 422, field="source")
        for path in ("/api/clients", "/api/consultations/create", "/api/consultations/simple"):
            problems.error(f"{path} [{value!r}]", post(client, path, [value]), 422)
    problems.error("create nulls", post(client, "/api/consultations/create", {"client": None, "consultation": None}),
                   422, field="consultation")
    problems.verify()
    assert rows(app) == counts


# --- headers -------------------------------------------------------------------------------------------------------

def create_body(comment="Нужна консультация"):
    return {"client": {"email": "idem@example.com"}, "consultation": {"comment": comment}}


def test_bad_idempotency_keys_are_422_and_write_nothing(app, client):
    counts = rows(app)
    problems = Problems()
    for key in ("k" * 256, "k" * 10_240, "k" * MB, " ", " \t ", ""):
        r = post(client, "/api/consultations/create", create_body(), headers={"Idempotency-Key": key})
        problems.error(f"key {key[:10]!r} ({len(key)})", r, 422)
        problems.check(f"key {key[:10]!r} errors", "Idempotency-Key" in (r.get_json(silent=True) or {}).get(
            "errors", {}).get("headers", {}), r)
    problems.verify()
    assert rows(app) == counts


def test_odd_but_valid_idempotency_keys_replay(client):
    problems = Problems()
    for n, key in enumerate(["' OR 1=1 --", "ключ", "Ð¿Ñ\x80Ð¸", "a\x00b", "k" * 255, "%00%ff", "\x7f\x1b[0m"]):
        body = create_body(f"вопрос {n}")
        first = post(client, "/api/consultations/create", body, headers={"Idempotency-Key": key})
        if first.status_code != 200:
            problems.append(f"{key!r}: {show(first)}")
            continue
        again = post(client, "/api/consultations/create", body, headers={"Idempotency-Key": key})
        problems.check(f"{key!r} replay", again.status_code == 200 and again.get_json() == first.get_json(), again)
        other = post(client, "/api/consultations/create", {**body, "source": "TELEGRAM"},
                     headers={"Idempotency-Key": key})
        problems.error(f"{key!r} other body", other, 409)
    problems.verify()
    client_id = post(client, "/api/clients", {"email": "idem@example.com"}).get_json()["client_id"]
    assert get(client, f"/api/tickets/clients/{client_id}/tickets").get_json()["total"] == 7


BAD_AUTH = [
    "Bearer " + "a" * 10_240, "Bearer " + "a" * 100_000, "Bearer токен", "Bearer Ñ\x82Ð¾ÐºÐµÐ½", "Bearer", "Bearer ",
    "Bearer \t ", "Bearer\t" + TOKEN, f"Bearer {TOKEN}\x00", f"Bearer \x00{TOKEN}", f"Bearer {TOKEN} extra",
    f"Bearer {TOKEN},{TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN.upper()}", f"Basic {TOKEN}", TOKEN,
    f"Bearer {TOKEN}\x7f", "Bearer \x1b[31m", "Bearer ' OR 1=1 --", "Bearer \u202e" + TOKEN, "Bearer " + "\x00" * 64,
]


def test_odd_authorization_headers_are_401(app, client):
    counts = rows(app)
    problems = Problems()
    for value in BAD_AUTH:
        for r in (client.get("/api/clients/by-hash/x", headers={"Authorization": value}),
                  client.post("/api/clients", data=json.dumps({"email": "a@example.com"}),
                              headers={"Authorization": value, "Content-Type": "application/json"}),
                  client.post("/api/consultations/create", data=json.dumps(create_body()),
                              headers={"Authorization": value, "Content-Type": "application/json"})):
            problems.error(f"{r.request.path} Authorization {value[:30]!r}", r, 401)
            problems.check(f"{value[:30]!r} WWW-Authenticate",
                           r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r)
    problems.verify()
    assert rows(app) == counts


def test_odd_authorization_headers_in_any_mode(make_app):
    """AUTH_MODE=any fingerprints whatever token it gets (for rate limits and idempotency keys): never a 5xx."""
    client = make_app(AUTH_MODE="any").test_client()
    problems = Problems()
    for value in BAD_AUTH:
        r = client.get("/api/clients/by-hash/x", headers={"Authorization": value})
        problems.error(f"Authorization {value[:30]!r}", r, 401, 404)
    problems.verify()


CONTROL_REQUEST_IDS = ["abc\x01def", "\x1b[31mred\x1b[0m", "a\tb", "\x7f", "a\x00b", "\x85next", "nb\xa0sp", "x" * 65,
                       "x" * 10_000, "\u2028", "id\x0bid", "id\x0cid", "\x08\x08\x08", "\x9b31m"]


def test_request_id_with_control_characters_is_not_echoed(client):
    problems = Problems()
    for request_id in CONTROL_REQUEST_IDS:
        for method, path, headers in [("GET", "/api/health", {}), ("GET", "/api/clients/by-hash/x", AUTH),
                                      ("GET", "/api/clients/x", {}), ("POST", "/api/clients", JSON_HEADERS)]:
            r = client.open(path, method=method, data="{}" if method == "POST" else None,
                            headers={**headers, "X-Request-ID": request_id})
            label = f"{method} {path} X-Request-ID {request_id[:20]!r}"
            problems.check(f"{label} status", r.status_code < 500 and (r.status_code < 400 or error_problem(r) is None),
                           r)
            echoed = r.headers.get("X-Request-ID", "")
            problems.check(f"{label} echoed as {echoed[:30]!r}", echoed != request_id and 0 < len(echoed) <= 64
                           and echoed.isascii() and echoed.isprintable())
    problems.verify()


def test_printable_request_id_is_echoed(client):
    for request_id in ("req-123", "a" * 64, "' OR 1=1 --"):
        assert client.get("/api/health", headers={"X-Request-ID": request_id}).headers["X-Request-ID"] == request_id


# --- nothing half-written ------------------------------------------------------------------------------------------

def test_failed_consultation_part_creates_no_client(app, client):
    """Each request carries a new client (fresh hash and email) and a consultation part that fails."""
    other = new_client(client, client_id_hash="other")
    failing = [
        ({"comment": "x", "client_id": str(uuid.uuid4())}, 404),  # unknown client
        ({"comment": "x", "org_inn": "12345"}, 422),
        ({"comment": "x", "scheduled_at": "2001-01-01T00:00:00Z"}, 422),
        ({"comment": "x", "lang": "en"}, 422),
        ({"comment": " "}, 422),
        ({"comment": "x", "importance": 9}, 422),
        ({"comment": "x", "unknown": 1}, 422),
        ({"comment": "x\x00"}, 422),
        ({}, 422),
    ]
    problems = Problems()
    for n, (consultation, status) in enumerate(failing):
        counts = rows(app)
        hash_ = f"new-client-{n}"
        r = post(client, "/api/consultations/create", {
            "client": {"email": f"new{n}@example.com", "client_id_hash": hash_, "city": "Самарканд"},
            "consultation": consultation,
        })
        problems.error(f"{consultation}", r, status)
        problems.check(f"{consultation} wrote rows", rows(app) == counts)
        problems.check(f"{consultation} created the client", get(client, f"/api/clients/by-hash/{hash_}").status_code
                       == 404)
    problems.verify()
    assert get(client, "/api/clients/by-hash/other").get_json() == other


def test_failed_request_leaves_existing_clients_unchanged(app, client):
    a = new_client(client, email="a@example.com", client_id_hash="hash-a", city="Before")
    b = new_client(client, email="b@example.com", client_id_hash="hash-b", city="Before")
    attempts = [
        # resolved by hash to A, consultation invalid
        ({"client": {"client_id_hash": "hash-a", "city": "After"}, "consultation": {"comment": "x", "lang": "xx"}},
         422),
        # A takes B's identity
        ({"client": {"client_id": a["client_id"], "email": "b@example.com", "city": "After"},
          "consultation": {"comment": "x"}}, 409),
        # B (named by the consultation) takes A's hash
        ({"client": {"client_id_hash": "hash-a", "city": "After"},
          "consultation": {"comment": "x", "client_id": b["client_id"]}}, 409),
        # client ids that disagree
        ({"client": {"client_id": a["client_id"], "city": "After"},
          "consultation": {"comment": "x", "client_id": b["client_id"]}}, 422),
        # A by hash, with an unknown client named by the consultation
        ({"client": {"client_id_hash": "hash-a", "city": "After"},
          "consultation": {"comment": "x", "client_id": str(uuid.uuid4())}}, 404),
    ]
    problems = Problems()
    for body, status in attempts:
        counts = rows(app)
        problems.error(f"{body}", post(client, "/api/consultations/create", body), status)
        problems.check(f"{body} wrote rows", rows(app) == counts)
        problems.check(f"{body} changed A", get(client, f"/api/clients/{a['client_id']}").get_json() == a)
        problems.check(f"{body} changed B", get(client, f"/api/clients/{b['client_id']}").get_json() == b)
    for body, status in [({"client_id": a["client_id"], "email": "b@example.com", "city": "After"}, 409),
                         ({"client_id": b["client_id"], "client_id_hash": "hash-a"}, 409),
                         ({"client_id": str(uuid.uuid4()), "city": "After"}, 404)]:
        problems.error(f"clients {body}", post(client, "/api/clients", body), status)
    problems.verify()
    assert get(client, f"/api/clients/{a['client_id']}").get_json() == a
    assert get(client, f"/api/clients/{b['client_id']}").get_json() == b
    assert rows(app)["consultation"] == 0


def test_idempotency_conflict_writes_nothing(app, client):
    key = {"Idempotency-Key": "conflict-" + uuid.uuid4().hex}
    assert post(client, "/api/consultations/create", create_body(), headers=key).status_code == 200
    counts = rows(app)
    changed = {"client": {"email": "idem@example.com", "city": "Changed"}, "consultation": {"comment": "other"}}
    assert_error(post(client, "/api/consultations/create", changed, headers=key), 409)
    assert rows(app) == counts
    client_id = post(client, "/api/clients", {"email": "idem@example.com"}).get_json()["client_id"]
    assert get(client, f"/api/clients/{client_id}").get_json()["city"] is None


# --- over real HTTP ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("hostile-http") / "instance"
    instance.mkdir()
    with gunicorn(instance, {"CLOBUS_AUTH_MODE": "static", "CLOBUS_API_TOKENS": TOKEN}, workers=1, threads=4) as url:
        yield url


def http_error(r, *statuses):
    assert r.status_code < 500 and (not statuses or r.status_code in statuses), (r.status_code, r.text[:300])
    assert r.headers.get("Content-Type", "").startswith("application/json"), (r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body


def test_hostile_paths_and_headers_over_http(server):
    for template, detail in PATH_PARAMS:
        for segment in HOSTILE_SEGMENTS + [quote(s, safe="") for s in INJECTIONS if "/" not in s]:
            r = requests.get(server + template.format(segment), headers=AUTH, timeout=10)
            assert http_error(r, 404)["detail"] == detail
    for value in ("Bearer " + "a" * 8000, "Bearer", "Bearer токен".encode().decode("latin-1")):
        r = requests.get(f"{server}/api/clients/by-hash/x", headers={"Authorization": value}, timeout=10)
        http_error(r, 401)
    r = requests.get(f"{server}/api/health", headers={"X-Request-ID": "x" * 100}, timeout=10)
    assert r.status_code == 200 and r.headers["X-Request-ID"] != "x" * 100


def test_ten_kilobyte_bearer_token_over_http(server):
    """A 10 KB token reaches the app and gets its JSON 401 (the OIDC verifier takes tokens up to 16 KiB), not the
    HTTP server's own text/html 431 (gunicorn's default limit_request_field_size is 8190 bytes)."""
    r = requests.get(f"{server}/api/clients/by-hash/x", headers={"Authorization": "Bearer " + "a" * 10_240},
                     timeout=10)
    http_error(r, 401)


def test_chunked_body_over_the_limit_over_http(server):
    def chunks():
        yield b'{"email": "chunked-http@example.com"}'
        for _ in range(16):
            yield b" " * (64 * 1024)

    r = requests.post(f"{server}/api/clients", data=chunks(), timeout=30,
                      headers={**AUTH, "Content-Type": "application/json"})
    http_error(r, 413)
