"""A local stand-in for 1C:ЦЛ's standard OData interface (shared/spec/onec-odata.md).

It serves ``Catalog_Контрагенты`` and ``Document_ТелефонныйЗвонок`` under
``/<publication>/odata/standard.odata/`` with 1C's shapes and quirks, so that a client which works here
has a chance against the real thing:

- HTTP Basic auth, ``user:password`` decoded as UTF-8; anything else is a 401 with a non-JSON body;
- JSON only with ``$format=json`` or ``Accept: application/json``, otherwise (minimal) Atom XML;
- a literal ``+`` in the query string is a 500; a URL over 2048 characters is IIS's HTML 404 page;
- naive local dates (``tz``), lower-case GUIDs, empty ref/date instead of null, ``LineNumber`` as a string,
  ``ИНН`` right-padded to its fixed length, ``@navigationLinkUrl`` annotations;
- client-supplied ``Ref_Key`` kept, a second POST with it is 400 code 15;
- the 1C:ЦЛ write handler: ``Абонент_Key`` must be filled, and at most 3 calls per counterparty per day
  (by ``ДатаКонсультации``, or ``Date`` when empty), else HTTP 500 code "-1" with a Russian message.

Emulator-only: ``GET /__emulator__/state``, ``POST /__emulator__/reset`` and the fault endpoints of
``faults.py``.
Run it: ``python -m clobus_consult.emulators.onec --port 8081 --user U --password P``.
"""
import argparse
import base64
import binascii
import json
import re
import threading
import uuid
from collections import namedtuple
from datetime import datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from flask import Flask, Response, jsonify, request

from .faults import Faults
from .odata_filter import FilterError, evaluate, field_paths, parse

EMPTY_REF = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01T00:00:00"
CLOBUS_FOLDER = "7ccd31ca-887b-11eb-938b-00e04cd03b68"
CATALOG = "Catalog_Контрагенты"
DOCUMENT = "Document_ТелефонныйЗвонок"
MAX_URL = 2048
ACTIONS = {"Post", "Unpost"}
DAILY_LIMIT = 3
HANDLER_FAILED = ("Ошибка при выполнении обработчика - 'ПриЗаписи'\nпо причине:\n"
                  "{Документ.ТелефонныйЗвонок.МодульОбъекта(42)}: ")

# type: guid | bool | datetime | string | fixed | enum | table; size: max length (string) or fixed length;
# values: allowed enum names; ref: the set a *_Key points to; rows: row schema of a tabular section
# (None: rows kept as sent).
Field = namedtuple("Field", "type size values ref rows", defaults=(None, None, None, None))

CONTACT_ROW = {
    "LineNumber": Field("int64"),
    "Тип": Field("enum", values={"", "Телефон", "АдресЭлектроннойПочты", "Адрес", "ВебСтраница", "Другое"}),
    "Вид_Key": Field("guid"), "Представление": Field("string", 500),
}
SCHEMAS = {
    CATALOG: {
        "Ref_Key": Field("guid"), "DataVersion": Field("string"), "DeletionMark": Field("bool"),
        "Code": Field("string", 9), "Description": Field("string", 150),
        "Parent_Key": Field("guid", ref=CATALOG),
        "IsFolder": Field("bool"), "ИНН": Field("fixed", 14),
        "ЮридическоеФизическоеЛицо": Field("enum", values={"", "ЮридическоеЛицо", "ФизическоеЛицо"}),
        "КонтактнаяИнформация": Field("table", rows=CONTACT_ROW),
    },
    DOCUMENT: {
        "Ref_Key": Field("guid"), "DataVersion": Field("string"), "DeletionMark": Field("bool"),
        "Number": Field("string", 11), "Date": Field("datetime"), "Posted": Field("bool"),
        "Описание": Field("string"), "ВидОбращения": Field("enum", values={
            "", "КонсультацияИТС", "ВОчередьНаКонсультацию", "Другое"}),
        "Входящий": Field("bool"), "ДатаСоздания": Field("datetime"), "ДатаКонсультации": Field("datetime"),
        "Абонент_Key": Field("guid", ref=CATALOG), "Язык_Key": Field("guid"),
        "КатегорияВопроса_Key": Field("guid"), "ВопросНаКонсультацию_Key": Field("guid"),
        "СпособСвязи": Field("enum", values={"", "ПоСайту", "ПоТелеграм", "ПоТелефону"}),
        "Важность": Field("enum", values={"", "Низкая", "Обычная", "Высокая"}),
        "Тема": Field("string", 150), "АбонентКакСвязаться": Field("string", 250),
        "Комментарий": Field("string"),
        "КонсультацииИТС": Field("table"), "ВопросыИОтветы": Field("table"), "Конец": Field("datetime"),
        "ЗакрытоБезКонсультации": Field("bool"), "ДатаИзменения": Field("datetime"),
    },
}
READ_ONLY = {"Ref_Key", "DataVersion", "Posted", "ДатаИзменения"}
DEFAULTS = {"guid": EMPTY_REF, "bool": False, "datetime": EMPTY_DATE, "string": "", "enum": "", "table": [],
            "int64": "0"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_RESOURCE = re.compile(r"^(?P<set>[^(/]+)(?:\((?:guid)?'(?P<key>[^']*)'\))?(?:/(?P<action>[^/]+))?$")
_QUERY_OPTIONS = {"$format", "$filter", "$select", "$orderby", "$top", "$skip", "$inlinecount"}


class ODataError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Store:
    """The infobase: objects per set in insertion order, number counters, a data version counter."""

    def __init__(self, tz: ZoneInfo):
        self.tz = tz
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.sets = {CATALOG: {}, DOCUMENT: {}}
            self.counters = {CATALOG: 0, DOCUMENT: 0}
            self.versions = 0
            self.create(CATALOG, {"Ref_Key": CLOBUS_FOLDER, "Description": "CLOBUS", "IsFolder": True})

    def now(self) -> str:
        return datetime.now(self.tz).strftime("%Y-%m-%dT%H:%M:%S")

    def _stamp(self, set_name: str, obj: dict) -> None:
        self.versions += 1
        obj["DataVersion"] = base64.b64encode(self.versions.to_bytes(8, "big")).decode()
        if set_name == DOCUMENT:
            obj["ДатаИзменения"] = self.now()

    def create(self, set_name: str, body: dict) -> dict:
        with self.lock:
            key = body.get("Ref_Key")
            if key in (None, "", EMPTY_REF):
                key = str(uuid.uuid4())
            key = _coerce(Field("guid"), key, "Ref_Key")
            if key in self.sets[set_name]:
                raise ODataError(400, "15", f"Объект с ключом {key} уже существует")
            obj = {name: _default(field) for name, field in SCHEMAS[set_name].items()}
            obj.update(_writable(set_name, body))
            obj["Ref_Key"] = key
            obj["Posted"] = False
            if set_name == DOCUMENT and obj["Date"] == EMPTY_DATE:
                obj["Date"] = self.now()
            self._check(set_name, obj)  # before numbering: a rejected write uses up no number
            if set_name == DOCUMENT and not obj["Number"]:
                self.counters[DOCUMENT] += 1
                obj["Number"] = f"{self.counters[DOCUMENT]:011d}"
            elif set_name == CATALOG and not obj["Code"]:
                self.counters[CATALOG] += 1
                obj["Code"] = f"{self.counters[CATALOG]:09d}"
            self._stamp(set_name, obj)
            self.sets[set_name][key] = obj
            return dict(obj)

    def update(self, set_name: str, key: str, body: dict, *, posted: bool | None = None) -> dict:
        with self.lock:
            obj = dict(self.get(set_name, key))
            obj.update(_writable(set_name, body))
            if posted is not None:
                obj["Posted"] = posted
            self._check(set_name, obj)
            self._stamp(set_name, obj)
            self.sets[set_name][key] = obj
            return dict(obj)

    def get(self, set_name: str, key: str) -> dict:
        with self.lock:
            obj = self.sets[set_name].get(key)
            if obj is None:
                raise ODataError(404, "9", f"Экземпляр сущности {set_name}(guid'{key}') не найден")
            return dict(obj)

    def delete(self, set_name: str, key: str) -> None:
        with self.lock:
            self.get(set_name, key)
            del self.sets[set_name][key]

    def all(self, set_name: str) -> list[dict]:
        with self.lock:
            return [dict(obj) for obj in self.sets[set_name].values()]

    def _check(self, set_name: str, obj: dict) -> None:
        """1C:ЦЛ's ПриЗаписи handler of ТелефонныйЗвонок."""
        if set_name != DOCUMENT or obj["DeletionMark"]:
            return
        if obj["Абонент_Key"] == EMPTY_REF:
            raise ODataError(500, "-1", HANDLER_FAILED + "Не заполнено поле \"Абонент\"")
        day = _call_day(obj)
        same_day = [other for other in self.sets[DOCUMENT].values()
                    if other["Ref_Key"] != obj["Ref_Key"] and not other["DeletionMark"]
                    and other["Абонент_Key"] == obj["Абонент_Key"] and _call_day(other) == day]
        if len(same_day) >= DAILY_LIMIT:
            shown = f"{day[8:10]}.{day[5:7]}.{day[0:4]}"
            raise ODataError(500, "-1", HANDLER_FAILED + f"По абоненту уже зарегистрировано {len(same_day)} "
                                        f"обращения на {shown}: не более 3 обращений в день")


def _call_day(obj: dict) -> str:
    when = obj["ДатаКонсультации"] if obj["ДатаКонсультации"] != EMPTY_DATE else obj["Date"]
    return when[:10]


def _default(field: Field):
    if field.type == "fixed":
        return " " * field.size
    value = DEFAULTS[field.type]
    return list(value) if isinstance(value, list) else value


def _writable(set_name: str, body: dict) -> dict:
    """Typed, validated properties of a request body; unknown and read-only ones are silently ignored."""
    schema = SCHEMAS[set_name]
    return {name: _coerce(schema[name], value, name) for name, value in body.items()
            if name in schema and name not in READ_ONLY}


def _coerce(field: Field, value, name: str):
    def bad():
        return ODataError(400, "4", f"Неверное значение свойства {name}: {value!r}")

    kind = field.type
    if kind == "guid":
        if not isinstance(value, str) or not _GUID.match(value):
            raise bad()
        return value.lower()
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind == "datetime":
        if not isinstance(value, str) or not _DATE.match(value):
            raise bad()
        try:
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise bad() from None
        return value
    if kind == "int64":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise bad()
        if not str(value).lstrip("-").isdigit():
            raise bad()
        return str(int(value))
    if kind in ("string", "fixed", "enum"):
        if not isinstance(value, str):
            raise bad()
        if kind == "enum" and value not in field.values:
            raise bad()
        if field.size:  # over-long strings are silently truncated; fixed-length ones padded
            value = value[:field.size]
            if kind == "fixed":
                value = value.ljust(field.size)
        return value
    if kind == "table":
        return _rows(field, value, name)
    raise bad()


def _rows(field: Field, value, name: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise ODataError(400, "4", f"Неверное значение табличной части {name}")
    rows = []
    for expected, row in enumerate(value, start=1):
        if "LineNumber" not in row:
            raise ODataError(500, "0", f"Ошибка записи табличной части {name}: не задан LineNumber")
        number = _coerce(Field("int64"), row["LineNumber"], f"{name}.LineNumber")
        if number != str(expected):
            raise ODataError(400, "4", f"Неверный LineNumber {number} в табличной части {name}: "
                                       f"ожидался {expected}")
        if field.rows is None:
            clean = {key: val for key, val in row.items() if "@" not in key and key != "Ref_Key"}
        else:
            clean = {col: _default(spec) for col, spec in field.rows.items()}
            clean.update({col: _coerce(field.rows[col], val, f"{name}.{col}")
                          for col, val in row.items() if col in field.rows})
        clean["LineNumber"] = number
        rows.append(clean)
    return rows


# --- reading: $filter, $select, $orderby, $top/$skip -------------------------------------------------------

def _typed(field: Field, value):
    """A stored value as (kind, python value) for $filter / $orderby."""
    kind = field.type
    if kind == "guid":
        return "guid", value
    if kind == "bool":
        return "bool", value
    if kind == "datetime":
        return "datetime", datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")
    if kind == "int64":
        return "number", int(value)
    if kind == "table":
        raise ODataError(400, "14", "Табличная часть не может участвовать в условии")
    return "string", value


def _resolver(store: Store, set_name: str, obj: dict):
    def resolve(path: tuple[str, ...]):
        current_set, current = set_name, obj
        for step in path[:-1]:  # navigation through a reference: Абонент/Parent_Key
            field = SCHEMAS[current_set][f"{step}_Key"]
            current_set, key = field.ref, current[f"{step}_Key"]
            current = store.sets[current_set].get(key)
            if current is None:
                return "null", None
        return _typed(SCHEMAS[current_set][path[-1]], current[path[-1]])
    return resolve


def _check_path(set_name: str, path: tuple[str, ...]) -> None:
    current = set_name
    for step in path[:-1]:
        field = SCHEMAS[current].get(f"{step}_Key")
        if field is None or field.ref is None:
            raise ODataError(400, "14", f"Неизвестное свойство навигации {step} в $filter")
        current = field.ref
    if path[-1] not in SCHEMAS[current]:
        raise ODataError(400, "14", f"Неизвестное свойство {'/'.join(path)} в $filter")


def _query(store: Store, set_name: str, args) -> tuple[list[dict], int]:
    unknown = [name for name in args if name.startswith("$") and name not in _QUERY_OPTIONS]
    if unknown:
        raise ODataError(400, "14", f"Неподдерживаемый параметр запроса {unknown[0]}")
    schema = SCHEMAS[set_name]
    with store.lock:
        # 1C guarantees no order without $orderby; Ref_Key order makes that visible.
        rows = sorted(store.all(set_name), key=lambda obj: obj["Ref_Key"])
        if args.get("$filter"):
            try:
                tree = parse(args["$filter"])
                for path in field_paths(tree):
                    _check_path(set_name, path)
                rows = [obj for obj in rows if evaluate(tree, _resolver(store, set_name, obj))]
            except FilterError as exc:
                raise ODataError(400, exc.code, str(exc)) from None
    for part in reversed([p.strip() for p in args.get("$orderby", "").split(",") if p.strip()]):
        name, _, direction = part.partition(" ")
        direction = direction.strip() or "asc"
        if name not in schema or schema[name].type == "table" or direction not in ("asc", "desc"):
            raise ODataError(400, "14", f"Неверный параметр $orderby: {part}")
        rows.sort(key=lambda obj, f=schema[name], n=name: _typed(f, obj[n])[1], reverse=direction == "desc")
    count = len(rows)
    skip, top = _int_option(args, "$skip"), _int_option(args, "$top")
    rows = rows[skip or 0:]
    if top is not None:
        rows = rows[:top]
    return rows, count


def _int_option(args, name: str) -> int | None:
    raw = args.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ODataError(400, "14", f"Неверное значение параметра {name}: {raw}")
    return int(raw)


def _select(set_name: str, args) -> list[str] | None:
    raw = args.get("$select")
    if not raw:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if name not in SCHEMAS[set_name]:
            raise ODataError(400, "14", f"Неизвестное свойство {name} в $select")
    return names


# --- rendering -------------------------------------------------------------------------------------------

def _wire(set_name: str, obj: dict, names: list[str] | None) -> dict:
    """What 1C sends for one object: selected properties, tabular rows with the owner's Ref_Key,
    a navigation annotation next to each reference."""
    out = {}
    for name in names or SCHEMAS[set_name]:
        field = SCHEMAS[set_name][name]
        value = obj[name]
        if field.type == "table":
            value = [{"Ref_Key": obj["Ref_Key"], **row} for row in value]
        out[name] = value
        if field.ref:
            out[f"{name[:-4]}@navigationLinkUrl"] = f"{set_name}(guid'{obj['Ref_Key']}')/{name[:-4]}"
    return out


def _wants_json() -> bool:
    fmt = request.args.get("$format")
    if fmt:
        return fmt.lower() in ("json", "application/json")
    return "application/json" in request.headers.get("Accept", "")


def _json(payload: dict, status: int = 200, headers=None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, indent=1)
    return Response(body, status=status, headers=headers, content_type="application/json;charset=utf-8")


def _atom(root: str, set_name: str, objects: list[dict], single: bool, status: int = 200, headers=None):
    def props(obj):
        cells = []
        for key, value in obj.items():
            if "@" in key:
                continue
            if isinstance(value, list):
                value = f"[{len(value)} rows]"
            elif isinstance(value, bool):
                value = "true" if value else "false"
            cells.append(f"<d:{key}>{escape(str(value))}</d:{key}>")
        return "".join(cells)

    entries = "".join(f"<entry><id>{escape(root)}{escape(set_name)}(guid'{escape(str(obj.get('Ref_Key')))}')"
                      f'</id><content type="application/xml"><m:properties>{props(obj)}</m:properties>'
                      f"</content></entry>" for obj in objects)
    ns = ('xmlns="http://www.w3.org/2005/Atom" '
          'xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" '
          'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"')
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n{entries}' if single else
            f'<?xml version="1.0" encoding="UTF-8"?>\n<feed {ns} xml:base="{escape(root)}">'
            f"<title type=\"text\">{escape(set_name)}</title>{entries}</feed>")
    if single:
        body = body.replace("<entry>", f"<entry {ns}>", 1)
    kind = "entry" if single else "feed"
    return Response(body, status=status, headers=headers,
                    content_type=f"application/atom+xml;type={kind};charset=utf-8")


def _error(exc: ODataError) -> Response:
    if _wants_json():
        return _json({"odata.error": {"code": exc.code, "message": {"lang": "ru", "value": exc.message}}},
                     exc.status)
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<m:error xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">'
            f'<m:code>{escape(exc.code)}</m:code><m:message xml:lang="ru">{escape(exc.message)}</m:message>'
            "</m:error>")
    return Response(body, status=exc.status, content_type="application/xml;charset=utf-8")


# --- the app ---------------------------------------------------------------------------------------------

def create_app(user: str = "Администратор", password: str = "secret", tz: str = "Asia/Tashkent") -> Flask:
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    store = Store(ZoneInfo(tz))
    faults = Faults()
    faults.install(app)  # first: an injected 503/hang happens "in front of" everything, like a proxy would
    app.extensions["onec_store"] = store
    expected = b"Basic " + base64.b64encode(f"{user}:{password}".encode())

    @app.before_request
    def iis_and_auth():
        if request.path.startswith("/__emulator__"):
            return None
        raw_uri = request.environ.get("RAW_URI") or request.full_path
        if len(request.host_url.rstrip("/")) + len(raw_uri) > MAX_URL:  # IIS's page, not 1C's JSON
            return Response("<html><body><h1>404 - File or directory not found.</h1></body></html>", 404,
                            content_type="text/html")
        header = request.headers.get("Authorization", "").encode("latin-1", "replace")
        if not _same_credentials(header, expected):
            return Response("Unauthorized", 401, {"WWW-Authenticate": 'Basic realm="1C"'},
                            content_type="text/plain;charset=utf-8")
        if b"+" in request.query_string:  # 1C takes '+' literally and its query parser fails
            return _error(ODataError(500, "0", "Ошибка разбора строки запроса: неожиданный символ '+'"))
        return None

    @app.errorhandler(ODataError)
    def odata_error(exc):
        return _error(exc)

    def root() -> str:
        return f"{request.host_url}{request.view_args['publication']}/odata/standard.odata/"

    @app.get("/<publication>/odata/standard.odata/")
    def service(publication):
        sets = [{"name": name, "url": name} for name in SCHEMAS]
        return _json({"odata.metadata": f"{root()}$metadata", "value": sets})

    methods = ["GET", "POST", "PATCH", "DELETE"]

    @app.route("/<publication>/odata/standard.odata/<path:resource>", methods=methods)
    def odata(publication, resource):
        match = _RESOURCE.match(resource)
        if resource == "$metadata":
            return Response('<?xml version="1.0" encoding="UTF-8"?><edmx:Edmx Version="1.0" '
                            'xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"/>',
                            content_type="application/xml;charset=utf-8")
        if not match or match["set"] not in SCHEMAS:
            raise ODataError(404, "8", f"Не найден набор сущностей {resource.split('(')[0]}")
        set_name, key, action = match["set"], match["key"], match["action"]
        if key is not None:
            if not _GUID.match(key):
                raise ODataError(400, "1", f"Неверный литерал ключа '{key}'")
            key = key.lower()
        if action:
            return run_action(set_name, key, action)
        if key is None:
            if request.method == "GET":
                return get_collection(set_name)
            if request.method == "POST":
                obj = store.create(set_name, _body())
                faults.after_commit()
                location = f"{root()}{set_name}(guid'{obj['Ref_Key']}')"
                headers = {"Location": location.encode().decode("latin-1")}  # raw UTF-8, as 1C sends it
                return entity(set_name, obj, 201, headers)
            raise ODataError(405, "14", "Метод не поддерживается для набора сущностей")
        if request.method == "GET":
            return entity(set_name, store.get(set_name, key), select=_select(set_name, request.args))
        if request.method == "PATCH":
            obj = store.update(set_name, key, _body())
            faults.after_commit()
            return entity(set_name, obj)
        if request.method == "DELETE":
            store.delete(set_name, key)
            faults.after_commit()
            return Response(status=204)
        raise ODataError(405, "14", "Метод не поддерживается для экземпляра сущности")

    def run_action(set_name, key, action):
        if request.method != "POST" or key is None or set_name != DOCUMENT or action not in ACTIONS:
            raise ODataError(400, "14", f"Недопустимое обращение к действию {action}")
        store.update(set_name, key, {}, posted=action == "Post")
        faults.after_commit()
        return Response(status=200)

    def get_collection(set_name):
        select = _select(set_name, request.args)
        rows, count = _query(store, set_name, request.args)
        inline = request.args.get("$inlinecount", "none")
        if inline not in ("allpages", "none"):
            raise ODataError(400, "14", f"Неверное значение $inlinecount: {inline}")
        wire = [_wire(set_name, obj, select) for obj in rows]
        if not _wants_json():
            return _atom(root(), set_name, wire, single=False)
        payload = {"odata.metadata": f"{root()}$metadata#{set_name}"}
        if inline == "allpages":
            payload["odata.count"] = str(count)
        payload["value"] = wire
        return _json(payload)

    def entity(set_name, obj, status=200, headers=None, select=None):
        wire = _wire(set_name, obj, select)
        if not _wants_json():
            return _atom(root(), set_name, [wire], single=True, status=status, headers=headers)
        return _json({"odata.metadata": f"{root()}$metadata#{set_name}/@Element", **wire}, status, headers)

    @app.get("/__emulator__/state")
    def state():
        return jsonify({name: [_wire(name, obj, None) for obj in store.all(name)] for name in SCHEMAS})

    @app.post("/__emulator__/reset")
    def reset():
        store.reset()
        faults.set("none")
        with faults.lock:
            faults.stats.clear()
        return jsonify({"ok": True})

    return app


def _same_credentials(header: bytes, expected: bytes) -> bool:
    if header == expected:
        return True
    try:  # tolerate other base64 padding/whitespace, still compare the decoded UTF-8 bytes
        given = base64.b64decode(header.partition(b" ")[2].strip(), validate=True)
        return header[:6].lower() == b"basic " and given == base64.b64decode(expected[6:])
    except (binascii.Error, ValueError):
        return False


def _body() -> dict:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        raise ODataError(400, "4", "Тело запроса не является корректным JSON") from None
    if not isinstance(body, dict):
        raise ODataError(400, "4", "Тело запроса должно быть объектом JSON")
    return body


def main(argv=None) -> None:
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description="Local 1C:ЦЛ OData emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--user", default="Администратор")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--tz", default="Asia/Tashkent")
    args = parser.parse_args(argv)
    print(f"ONEC_URL=http://{args.host}:{args.port}/cl/odata/standard.odata/")
    run_simple(args.host, args.port, create_app(args.user, args.password, args.tz), threaded=True)


if __name__ == "__main__":
    main()
