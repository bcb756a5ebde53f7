"""HTTP client for 1C:ЦЛ's standard OData interface: counterparties, consultation requests, their status.

Why it looks the way it does (shared/spec/onec-odata.md):
- Query strings are built by hand with ``quote``: ``requests``' ``params=`` turns spaces into ``+``, which 1C
  takes literally and answers 500. No long ``or`` filters are built here (URLs over ~2 KB get an HTML 404).
- Basic auth is encoded as UTF-8 here: ``requests`` encodes latin-1 and 1C user names are often Cyrillic.
- ``$format=json`` and ``Accept: application/json`` on every call: without them 1C answers Atom XML.
- Creation is idempotent through our own ``Ref_Key``: the caller generates and stores a GUID, we POST with it;
  after an uncertain failure we GET it before posting again, and 400 code 15 means "already exists".
- HTTP 500 with code "-1" is a business rule of the write handler (e.g. not more than 3 calls a day):
  permanent, and its Russian text is kept for the user. Other 5xx, 408, 429, timeouts and dropped connections
  are transient.
- Dates are naive in the infobase's local time (Asia/Tashkent); the empty GUID/date mean "not set"; keys with
  ``@`` are navigation annotations; fixed-length strings come right-padded.
- No retries inside: the outbox retries, and ``uncertain`` tells it when a write may already have been
  applied.
"""
import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import requests
from urllib3.exceptions import NewConnectionError

from .errors import SyncError

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01T00:00:00"
COUNTERPARTIES = "Catalog_Контрагенты"
CALLS = "Document_ТелефонныйЗвонок"
DEFAULT_FOLDER = "7ccd31ca-887b-11eb-938b-00e04cd03b68"
PHONE_KIND = "c07763c7-2ae8-4708-a608-7691be9d782b"
EMAIL_KIND = "f0dddb0f-1cac-49ab-ad37-f9480b0ef654"
LANGUAGES = {"ru": "15d38cda-1812-11ef-b824-c67597d01fa8", "uz": "15d38cdb-1812-11ef-b824-c67597d01fa8"}
CHANNELS = {"SITE": "ПоСайту", "TELEGRAM": "ПоТелеграм"}
IMPORTANCE = {1: "Низкая", 2: "Обычная", 3: "Высокая"}
STATUSES = {"КонсультацияИТС": "closed", "ВОчередьНаКонсультацию": "pending", "Другое": "other", "": "new"}
LEGAL_FORMS = {9: "ЮридическоеЛицо", 14: "ФизическоеЛицо"}
CALL_FIELDS = ("Ref_Key", "Number", "ВидОбращения", "ДатаКонсультации", "Конец", "ЗакрытоБезКонсультации",
               "DeletionMark", "ДатаИзменения")
# Ref_Key breaks ties among equal whole-second timestamps so that $skip pages neither overlap nor skip.
CHANGES_ORDER = "ДатаИзменения asc,Ref_Key asc"
_SAFE = "'(),:/"  # kept readable in the query string; everything else (spaces, '+', '&', Cyrillic) is escaped


def clean(entity: dict) -> dict:
    """1C's JSON object as plain values: annotations and odata.* keys dropped, padded strings stripped,
    the empty GUID and the empty date as None (tabular rows likewise)."""
    out = {}
    for key, value in entity.items():
        if "@" in key or key.startswith("odata."):
            continue
        if isinstance(value, str):
            value = value.rstrip(" ")
            if value in (EMPTY_GUID, EMPTY_DATE):
                value = None
        elif isinstance(value, list):
            value = [clean(row) if isinstance(row, dict) else row for row in value]
        out[key] = value
    return out


def literal(text: str) -> str:
    """A string literal for $filter (a quote inside is doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _guid(value) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        return None


class OneCClient:
    def __init__(self, base_url: str, user: str, password: str, *, counterparty_folder: str = DEFAULT_FOLDER,
                 tz: str = "Asia/Tashkent", timeout=(5.0, 30.0)):
        self.base_url = base_url.rstrip("/") + "/"
        self.user = user
        self._password = password
        self.folder = counterparty_folder.lower()
        self.tz = ZoneInfo(tz)
        self.timeout = timeout
        self.session = requests.Session()
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self.session.headers.update({"Authorization": f"Basic {token}", "Accept": "application/json"})

    def close(self) -> None:
        self.session.close()

    # --- dates -------------------------------------------------------------------------------------------

    def from_local(self, value: str | None) -> datetime | None:
        """1C's naive local date string → aware UTC datetime; the empty date → None."""
        if not value or value.rstrip() == EMPTY_DATE:
            return None
        return datetime.fromisoformat(value.rstrip()).replace(tzinfo=self.tz).astimezone(UTC)

    def to_local(self, value: datetime) -> str:
        """An aware datetime (naive is taken as UTC) → 1C's naive local string, whole seconds."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M:%S")

    # --- counterparties ----------------------------------------------------------------------------------

    def ensure_counterparty(self, *, ref_key: str, inn: str | None, name: str, email: str | None,
                            phone: str | None, known_key: str | None = None) -> str:
        """Return the Ref_Key of the counterparty to use.

        1. ``known_key`` (stored earlier) is trusted without a call.
        2. With an ИНН: the live counterparty with it in our folder, if any.
           Without one: our own ``ref_key``, if an earlier (uncertain) POST created it.
        3. Otherwise POST with our ``ref_key``; 400 code 15 means a concurrent or earlier writer created it.
        """
        if known_key:
            return known_key
        key = self._key(ref_key)
        inn = (inn or "").strip() or None
        if inn:
            found = self._find_counterparty(inn)
            if found:
                return found
        elif self._get(COUNTERPARTIES, key, ("Ref_Key",)) is not None:
            return key
        body = self.build_counterparty(ref_key=key, inn=inn, name=name, email=email, phone=phone)
        resp = self._call("POST", self._path(COUNTERPARTIES), body=body, tolerate=(400,))
        if resp.status_code == 400:
            if _odata_error(resp)[0] == "15":
                return key
            raise self._http_error("POST", COUNTERPARTIES, resp)
        return self._json(resp, "POST", COUNTERPARTIES).get("Ref_Key") or key

    def _find_counterparty(self, inn: str) -> str | None:
        query = [
            ("$filter",
             f"ИНН eq {literal(inn)} and Parent_Key eq guid'{self.folder}' and DeletionMark eq false"),
            ("$select", "Ref_Key,Description,ИНН,Parent_Key,DeletionMark"),
            ("$top", "1"),
        ]
        resp = self._call("GET", self._path(COUNTERPARTIES), query)
        rows = self._json(resp, "GET", COUNTERPARTIES).get("value") or []
        return rows[0].get("Ref_Key") if rows else None

    def build_counterparty(self, *, ref_key: str, inn: str | None, name: str, email: str | None,
                           phone: str | None) -> dict:
        """The POST body of a new counterparty in our folder (pure)."""
        name = (name or "").strip() or email or phone or "?"
        body = {
            "Ref_Key": ref_key,
            "Description": f"Clobus {name} ({inn})" if inn else f"Clobus {name}",
            "Parent_Key": self.folder,
        }
        if inn:
            body["ИНН"] = inn
            if len(inn) in LEGAL_FORMS:
                body["ЮридическоеФизическоеЛицо"] = LEGAL_FORMS[len(inn)]
        rows = []
        if phone:
            rows.append({"Тип": "Телефон", "Вид_Key": PHONE_KIND, "Представление": phone})
        if email:
            rows.append({"Тип": "АдресЭлектроннойПочты", "Вид_Key": EMAIL_KIND, "Представление": email})
        body["КонтактнаяИнформация"] = [{"LineNumber": str(n), **row} for n, row in enumerate(rows, start=1)]
        return body

    # --- consultation requests ---------------------------------------------------------------------------

    def ensure_call(self, c: dict, *, ref_key: str, counterparty_key: str, look_first: bool) -> dict:
        """Create the Document_ТелефонныйЗвонок with our ``ref_key`` exactly once: {"ref_key", "number"}.

        ``look_first`` (after an uncertain attempt): GET it and return it if it is there. A 400 code 15 on the
        POST means it exists: GET and return it.
        """
        key = self._key(ref_key)
        if look_first:
            found = self._get(CALLS, key, ("Ref_Key", "Number"))
            if found is not None:
                return {"ref_key": found["Ref_Key"], "number": found.get("Number") or ""}
        body = {"Ref_Key": key, **self.build_call(c, counterparty_key)}
        resp = self._call("POST", self._path(CALLS), body=body, tolerate=(400,))
        if resp.status_code == 400:
            if _odata_error(resp)[0] == "15":
                found = self._get(CALLS, key, ("Ref_Key", "Number"))
                if found is not None:
                    return {"ref_key": found["Ref_Key"], "number": found.get("Number") or ""}
            raise self._http_error("POST", CALLS, resp)
        created = self._json(resp, "POST", CALLS)
        return {"ref_key": created.get("Ref_Key") or key, "number": created.get("Number") or ""}

    def build_call(self, c: dict, counterparty_key: str, *, now: datetime | None = None) -> dict:
        """The POST body of a consultation request, per the spec's field table (pure; ``now`` for tests)."""
        now = now or datetime.now(UTC)
        scheduled = c.get("scheduled_at")
        comment = c.get("comment") or ""
        category, question = c.get("online_question_cat"), c.get("online_question")
        lines = ["Создано из Clobus.uz"]
        if category:
            lines.append(f"Категория вопроса: {category}")
        if question:
            lines.append(f"Вопрос: {question}")
        if comment:
            lines.append(comment)
        body = {
            "Date": self.to_local(scheduled or now),
            "Posted": False,
            "Описание": comment,
            "ВидОбращения": "ВОчередьНаКонсультацию",
            "Входящий": True,
            "ДатаСоздания": self.to_local(c.get("created_at") or now),
            "Абонент_Key": counterparty_key,
            "Язык_Key": LANGUAGES.get(c.get("lang") or "ru", LANGUAGES["ru"]),
            "КатегорияВопроса_Key": _guid(category) or EMPTY_GUID,
            "ВопросНаКонсультацию_Key": _guid(question) or EMPTY_GUID,
            "СпособСвязи": CHANNELS.get(c.get("source") or "", "ПоТелефону"),
            "Важность": IMPORTANCE.get(c.get("importance") or 2, "Обычная"),
            "АбонентКакСвязаться": " / ".join(v for v in (c.get("phone_number"), c.get("email")) if v),
            "Комментарий": "\n".join(lines),
            "КонсультацииИТС": [],
            "ВопросыИОтветы": [],
        }
        if scheduled:
            body["ДатаКонсультации"] = self.to_local(scheduled)
        if c.get("topic"):
            body["Тема"] = c["topic"]
        return body

    def get_call(self, ref_key: str) -> dict | None:
        """The request's current state (see ``changes_since``), or None if 1C does not have it."""
        found = self._get(CALLS, self._key(ref_key), CALL_FIELDS)
        return self._normalise_call(found) if found is not None else None

    def changes_since(self, since: datetime, *, page_size: int = 1000) -> Iterator[dict]:
        """Requests with ДатаИзменения >= ``since``, oldest change first, paged until a short page.

        Each item: ref_key, number, kind (ВидОбращения as is), status (closed/pending/other/new),
        consultation_at, ended_at (aware UTC or None), closed_without_consultation, deleted, modified_at.
        """
        # Keyset paging: each page starts again at the newest ДатаИзменения seen so far (rows already yielded
        # are recognised by key and timestamp); $skip only walks a second that fills whole pages. A plain $skip
        # over the window loses a row whenever a document on an earlier page is modified meanwhile: it moves
        # to the end and everything after it shifts left. A document modified meanwhile comes again, as the
        # change it is.
        cursor, skip, seen = self.to_local(since), 0, set()
        while True:
            query = [
                ("$filter", f"ДатаИзменения ge datetime'{cursor}'"),
                ("$select", ",".join(CALL_FIELDS)),
                ("$orderby", CHANGES_ORDER),
                ("$top", str(page_size)),
                ("$skip", str(skip)),
            ]
            resp = self._call("GET", self._path(CALLS), query)
            rows = self._json(resp, "GET", CALLS).get("value") or []
            for row in rows:
                mark = (row.get("Ref_Key"), row.get("ДатаИзменения"))
                if mark not in seen:
                    seen.add(mark)
                    yield self._normalise_call(row)
            if len(rows) < page_size:
                return
            last = rows[-1].get("ДатаИзменения")
            cursor, skip = (cursor, skip + page_size) if last == cursor else (last, 0)

    def _normalise_call(self, e: dict) -> dict:
        kind = e.get("ВидОбращения") or ""
        return {
            "ref_key": e.get("Ref_Key"),
            "number": e.get("Number") or "",
            "kind": kind,
            "status": STATUSES.get(kind, "other"),
            "consultation_at": self.from_local(e.get("ДатаКонсультации")),
            "ended_at": self.from_local(e.get("Конец")),
            "closed_without_consultation": bool(e.get("ЗакрытоБезКонсультации")),
            "deleted": bool(e.get("DeletionMark")),
            "modified_at": self.from_local(e.get("ДатаИзменения")),
        }

    # --- HTTP --------------------------------------------------------------------------------------------

    def _key(self, ref_key: str) -> str:
        key = _guid(ref_key)
        if key is None:
            raise SyncError(f"1C: {ref_key!r} is not a GUID", permanent=True)
        return key

    @staticmethod
    def _path(set_name: str, key: str | None = None) -> str:
        return quote(set_name) + (f"(guid'{key}')" if key else "")

    def _get(self, set_name: str, key: str, select: tuple[str, ...]) -> dict | None:
        """One object by key (cleaned), or None on 404 code 9 (an HTML 404 or an unknown set still raise)."""
        resp = self._call("GET", self._path(set_name, key), [("$select", ",".join(select))], tolerate=(404,))
        if resp.status_code == 404:
            if _odata_error(resp)[0] == "9":
                return None
            raise self._http_error("GET", set_name, resp)
        return self._json(resp, "GET", set_name)

    def _call(self, method: str, path: str, query=(), body=None, *, tolerate=()) -> requests.Response:
        qs = "&".join(f"{name}={quote(value, safe=_SAFE)}" for name, value in [("$format", "json"), *query])
        url = f"{self.base_url}{path}?{qs}"
        data = headers = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            headers = {"Content-Type": "application/json;charset=utf-8"}
        write = method != "GET"
        what = f"1C {method} {unquote(path)}"
        try:
            resp = self.session.request(method, url, data=data, headers=headers, timeout=self.timeout,
                                        allow_redirects=False)
        except requests.ConnectTimeout as exc:
            raise self._fail(f"{what}: connect timeout ({exc})") from None
        except requests.Timeout as exc:
            raise self._fail(f"{what}: timed out ({exc})", uncertain=write) from None
        except requests.ConnectionError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            sent = not isinstance(reason, NewConnectionError)
            raise self._fail(f"{what}: connection failed ({exc})", uncertain=write and sent) from None
        except requests.RequestException as exc:
            raise self._fail(f"{what}: {exc}", uncertain=write) from None
        if 200 <= resp.status_code < 300 or resp.status_code in tolerate:
            return resp
        raise self._http_error(method, unquote(path), resp)

    def _http_error(self, method: str, what: str, resp: requests.Response) -> SyncError:
        status = resp.status_code
        code, text = _odata_error(resp)
        if status == 500 and code == "-1":  # the object's write handler said no: tell the user, never retry
            text = text or f"1C {method} {what}: rejected by 1C (HTTP 500 code -1)"
            return self._fail(text, permanent=True, status=status)
        detail = f"1C {method} {what}: HTTP {status}"
        if code:
            detail += f" code {code}"
        if text:
            detail += f": {text}"
        elif status == 401:
            detail += f": access denied for user {self.user!r}"
        else:
            detail += f" ({resp.headers.get('Content-Type') or 'no content type'}, not an OData error)"
        if status in (408, 429):
            return self._fail(detail, status=status)
        if status >= 500:
            return self._fail(detail, uncertain=method != "GET", status=status)
        return self._fail(detail, permanent=True, status=status)

    def _json(self, resp: requests.Response, method: str, what: str) -> dict:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._fail(f"1C {method} {what}: HTTP {resp.status_code} without a JSON object "
                             f"({resp.headers.get('Content-Type')})", uncertain=method != "GET",
                             status=resp.status_code)
        return clean(data)

    def _fail(self, message: str, *, permanent: bool = False, uncertain: bool = False,
              status: int | None = None) -> SyncError:
        if len(self._password) >= 4:  # belt and braces: nothing we build contains it
            message = message.replace(self._password, "***")
        return SyncError(message[:2000], permanent=permanent, uncertain=uncertain, status=status)


def _odata_error(resp: requests.Response) -> tuple[str | None, str]:
    """(code, message) of an ``odata.error`` body; (None, "") when the body is something else."""
    try:
        error = resp.json()["odata.error"]
        message = error.get("message")
        text = message.get("value") if isinstance(message, dict) else message
        return str(error.get("code")), str(text or "").strip()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, ""
