"""OneCClient against the 1C OData emulator, over real HTTP on 127.0.0.1."""
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import requests

from clobus_consult.emulators.onec import create_app
from clobus_consult.emulators.server import ServerThread
from clobus_consult.sync.errors import SyncError
from clobus_consult.sync.onec import OneCClient, clean

USER, PASSWORD = "Администратор", "s3cret-пароль"
FOLDER = "7ccd31ca-887b-11eb-938b-00e04cd03b68"
CATALOG, DOCUMENT = "Catalog_Контрагенты", "Document_ТелефонныйЗвонок"
DOCUMENT_POST = f"POST /cl/odata/standard.odata/{DOCUMENT}"
ODATA_GETS = "GET /<publication>/odata/standard.odata/<path:resource>"


class Emulator:
    """Test-side handle on the emulator: raw OData calls, state, faults, stats."""

    def __init__(self, url: str, user: str = USER, password: str = PASSWORD):
        self.url = url
        self.base = f"{url}/cl/odata/standard.odata/"
        self.session = requests.Session()
        self.session.auth = (user.encode(), password.encode())  # bytes: sent as UTF-8 as they are

    def odata(self, method: str, path: str, query: str = "$format=json", **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.base}{path}?{query}", timeout=5, **kwargs)

    def create(self, set_name: str, body: dict) -> dict:
        resp = self.odata("POST", quote(set_name), json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def state(self, set_name: str) -> list[dict]:
        return requests.get(f"{self.url}/__emulator__/state", timeout=5).json()[set_name]

    def fault(self, mode: str, **kwargs) -> None:
        resp = requests.post(f"{self.url}/__emulator__/faults", json={"mode": mode, **kwargs}, timeout=5)
        resp.raise_for_status()

    def stats(self) -> dict:
        return requests.get(f"{self.url}/__emulator__/stats", timeout=5).json()


@pytest.fixture(scope="module")
def server():
    with ServerThread(create_app(user=USER, password=PASSWORD)) as srv:
        yield srv


@pytest.fixture
def emu(server):
    requests.post(f"{server.url}/__emulator__/reset", timeout=5).raise_for_status()
    return Emulator(server.url)


@pytest.fixture
def client(emu):
    onec = OneCClient(emu.base, USER, PASSWORD, timeout=(2.0, 5.0))
    yield onec
    onec.close()


def consultation(**overrides) -> dict:
    c = {
        "consultation_id": 1, "client_id": 7, "email": "buh@romashka.uz", "phone_number": "+998901234567",
        "org_inn": "123456789", "lang": "uz", "comment": "Как закрыть месяц?", "topic": "Закрытие месяца",
        "source": "SITE", "importance": 3, "scheduled_at": None,
        "created_at": datetime(2025, 3, 10, 6, 30, tzinfo=UTC),
        "online_question_cat": "1f0e6c1e-5a8e-4c1b-9d7e-2c3b4a5d6e7f", "online_question": None,
    }
    c.update(overrides)
    return c


def new_key() -> str:
    return str(uuid.uuid4())


def counterparty(client: OneCClient, inn: str | None = "123456789") -> str:
    return client.ensure_counterparty(ref_key=new_key(), inn=inn, name="ООО Ромашка", email="buh@romashka.uz",
                                      phone="+998901234567")


# --- counterparties ----------------------------------------------------------------------------------------

def test_counterparty_found_by_inn_in_folder_and_alive(emu, client):
    emu.create(CATALOG, {"Description": "Ромашка (чужая папка)", "ИНН": "123456789"})
    emu.create(CATALOG, {"Description": "Ромашка (удалена)", "ИНН": "123456789", "Parent_Key": FOLDER,
                         "DeletionMark": True})
    live = emu.create(CATALOG, {"Description": "ООО Ромашка", "ИНН": "123456789", "Parent_Key": FOLDER})

    key = client.ensure_counterparty(ref_key=new_key(), inn="123456789", name="x", email=None, phone=None)

    assert key == live["Ref_Key"]
    assert len(emu.state(CATALOG)) == 4  # the folder + three, nothing created


def test_counterparty_created_with_our_key(emu, client):
    ours = new_key()
    key = client.ensure_counterparty(ref_key=ours, inn="12345678901234", name="Иванов Иван",
                                     email="ivan@example.uz", phone="+998901112233")
    assert key == ours
    [obj] = [o for o in emu.state(CATALOG) if o["Ref_Key"] == ours]
    assert obj["Description"] == "Clobus Иванов Иван (12345678901234)"
    assert obj["Parent_Key"] == FOLDER
    assert obj["ЮридическоеФизическоеЛицо"] == "ФизическоеЛицо"
    rows = [(r["LineNumber"], r["Тип"], r["Вид_Key"], r["Представление"])
            for r in obj["КонтактнаяИнформация"]]
    assert rows == [("1", "Телефон", "c07763c7-2ae8-4708-a608-7691be9d782b", "+998901112233"),
                    ("2", "АдресЭлектроннойПочты", "f0dddb0f-1cac-49ab-ad37-f9480b0ef654", "ivan@example.uz")]


def test_counterparty_legal_entity_by_nine_digit_inn(emu, client):
    key = counterparty(client, inn="123456789")
    [obj] = [o for o in emu.state(CATALOG) if o["Ref_Key"] == key]
    assert obj["ЮридическоеФизическоеЛицо"] == "ЮридическоеЛицо"
    assert obj["Description"] == "Clobus ООО Ромашка (123456789)"


def test_counterparty_repeated_without_inn_is_one_object(emu, client):
    ours = new_key()
    args = dict(ref_key=ours, inn=None, name="Гость", email="guest@example.uz", phone=None)
    assert client.ensure_counterparty(**args) == ours
    assert client.ensure_counterparty(**args) == ours  # found by GET of our key, no second POST
    assert [o["Ref_Key"] for o in emu.state(CATALOG)].count(ours) == 1


def test_counterparty_lost_response_then_retry_is_one_object(emu, client):
    ours = new_key()
    args = dict(ref_key=ours, inn="123456789", name="ООО Ромашка", email=None, phone=None)
    emu.fault("lose_response", times=1, match=f"POST /cl/odata/standard.odata/{CATALOG}")
    with pytest.raises(SyncError) as err:
        client.ensure_counterparty(**args)
    assert not err.value.permanent and err.value.uncertain
    assert client.ensure_counterparty(**args) == ours
    assert len(emu.state(CATALOG)) == 2


def test_counterparty_already_existing_key_code_15_returns_our_key(emu, client):
    ours = new_key()
    # Our key exists but outside the folder, so the ИНН search misses it and the POST hits code 15.
    emu.create(CATALOG, {"Ref_Key": ours, "Description": "Clobus ООО Ромашка", "ИНН": "123456789"})
    assert client.ensure_counterparty(ref_key=ours, inn="123456789", name="ООО Ромашка", email=None,
                                      phone=None) == ours
    assert len(emu.state(CATALOG)) == 2


def test_counterparty_concurrent_create_with_same_key(emu):
    ours, results, barrier = new_key(), [], threading.Barrier(4)

    def worker():
        onec = OneCClient(emu.base, USER, PASSWORD, timeout=(2.0, 5.0))
        barrier.wait()
        results.append(onec.ensure_counterparty(ref_key=ours, inn="123456789", name="ООО Ромашка",
                                                email=None, phone=None))
        onec.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [ours] * 4
    assert [o["Ref_Key"] for o in emu.state(CATALOG)] == [FOLDER, ours]


def test_known_counterparty_key_is_trusted_without_a_call(emu, client):
    before = emu.stats().get("total", 0)
    known = new_key()
    assert client.ensure_counterparty(ref_key=new_key(), inn="123456789", name="x", email=None, phone=None,
                                      known_key=known) == known
    assert emu.stats().get("total", 0) == before


# --- consultation requests ---------------------------------------------------------------------------------

def test_ensure_call_creates_document_per_field_table(emu, client):
    abonent = counterparty(client)
    ours = new_key()
    result = client.ensure_call(consultation(), ref_key=ours, counterparty_key=abonent, look_first=False)

    assert result == {"ref_key": ours, "number": "00000000001"}
    [doc] = emu.state(DOCUMENT)
    assert doc["Ref_Key"] == ours and doc["Number"] == "00000000001" and doc["Posted"] is False
    assert doc["Абонент_Key"] == abonent
    assert doc["Язык_Key"] == "15d38cdb-1812-11ef-b824-c67597d01fa8"  # uz
    assert doc["СпособСвязи"] == "ПоСайту"
    assert doc["Важность"] == "Высокая"
    assert doc["ВидОбращения"] == "ВОчередьНаКонсультацию" and doc["Входящий"] is True
    assert doc["Описание"] == "Как закрыть месяц?"
    assert doc["Тема"] == "Закрытие месяца"
    assert doc["АбонентКакСвязаться"] == "+998901234567 / buh@romashka.uz"
    assert doc["Комментарий"].splitlines() == [
        "Создано из Clobus.uz",
        "Категория вопроса: 1f0e6c1e-5a8e-4c1b-9d7e-2c3b4a5d6e7f",
        "Как закрыть месяц?",
    ]
    assert doc["КатегорияВопроса_Key"] == "1f0e6c1e-5a8e-4c1b-9d7e-2c3b4a5d6e7f"
    assert doc["ВопросНаКонсультацию_Key"] == "00000000-0000-0000-0000-000000000000"
    assert doc["ДатаСоздания"] == "2025-03-10T11:30:00"  # created_at in Tashkent local time
    assert doc["ДатаКонсультации"] == "0001-01-01T00:00:00"
    assert doc["КонсультацииИТС"] == [] and doc["ВопросыИОтветы"] == []

    call = client.get_call(ours)
    assert call["number"] == "00000000001" and call["status"] == "pending" and call["ended_at"] is None
    assert client.get_call(new_key()) is None


def test_build_call_maps_values():
    onec = OneCClient("http://127.0.0.1:9/cl/odata/standard.odata/", USER, PASSWORD)
    at = datetime(2025, 3, 10, 20, 0, tzinfo=UTC)  # 01:00 next day in Tashkent
    body = onec.build_call(consultation(lang="ru", source="CALL_CENTER", importance=None, scheduled_at=at,
                                        topic=None, comment=None, email=None, online_question_cat=None,
                                        online_question="not-a-guid"), "abc")
    assert body["Язык_Key"] == "15d38cda-1812-11ef-b824-c67597d01fa8"
    assert body["СпособСвязи"] == "ПоТелефону"
    assert body["Важность"] == "Обычная"
    assert body["Date"] == body["ДатаКонсультации"] == "2025-03-11T01:00:00"
    assert "Тема" not in body
    assert body["АбонентКакСвязаться"] == "+998901234567"
    assert body["Комментарий"] == "Создано из Clobus.uz\nВопрос: not-a-guid"
    assert body["ВопросНаКонсультацию_Key"] == "00000000-0000-0000-0000-000000000000"
    telegram = onec.build_call(consultation(source="TELEGRAM", importance=1), "abc")
    assert telegram["СпособСвязи"] == "ПоТелеграм" and telegram["Важность"] == "Низкая"
    onec.close()


def test_lost_response_then_look_first_makes_exactly_one_document(emu, client):
    abonent, ours = counterparty(client), new_key()
    emu.fault("lose_response", times=1, match=DOCUMENT_POST)
    with pytest.raises(SyncError) as err:
        client.ensure_call(consultation(), ref_key=ours, counterparty_key=abonent, look_first=False)
    assert err.value.uncertain and not err.value.permanent

    result = client.ensure_call(consultation(), ref_key=ours, counterparty_key=abonent, look_first=True)
    assert result == {"ref_key": ours, "number": "00000000001"}
    assert [d["Ref_Key"] for d in emu.state(DOCUMENT)] == [ours]
    # Even without look_first the key makes a repeat harmless (400 code 15 → GET).
    again = client.ensure_call(consultation(), ref_key=ours, counterparty_key=abonent, look_first=False)
    assert again == result and len(emu.state(DOCUMENT)) == 1


def test_fourth_call_for_the_same_counterparty_and_day_is_a_permanent_business_error(emu, client):
    abonent = counterparty(client)
    day = datetime(2025, 3, 10, 5, 0, tzinfo=UTC)
    for hour in range(3):
        client.ensure_call(consultation(scheduled_at=day + timedelta(hours=hour)), ref_key=new_key(),
                           counterparty_key=abonent, look_first=False)
    with pytest.raises(SyncError) as err:
        client.ensure_call(consultation(scheduled_at=day + timedelta(hours=5)), ref_key=new_key(),
                           counterparty_key=abonent, look_first=False)
    assert err.value.permanent and not err.value.uncertain and err.value.status == 500
    assert "не более 3 обращений в день" in str(err.value)
    assert str(err.value).startswith("Ошибка при выполнении обработчика - 'ПриЗаписи'")
    # Another day is fine.
    client.ensure_call(consultation(scheduled_at=day + timedelta(days=1)), ref_key=new_key(),
                       counterparty_key=abonent, look_first=False)
    assert len(emu.state(DOCUMENT)) == 4


def test_503_is_transient(emu, client):
    abonent = counterparty(client)
    emu.fault("503", times=2)
    with pytest.raises(SyncError) as err:
        client.get_call(new_key())
    assert not err.value.permanent and not err.value.uncertain and err.value.status == 503
    with pytest.raises(SyncError) as err:
        client.ensure_call(consultation(), ref_key=new_key(), counterparty_key=abonent, look_first=False)
    assert not err.value.permanent and err.value.uncertain and err.value.status == 503


def test_hang_with_small_timeout_is_transient_and_uncertain(emu, client):
    abonent, ours = counterparty(client), new_key()
    hasty = OneCClient(emu.base, USER, PASSWORD, timeout=(1.0, 0.2))
    emu.fault("hang", times=1, delay=0.6, match=DOCUMENT_POST)
    with pytest.raises(SyncError) as err:
        hasty.ensure_call(consultation(), ref_key=ours, counterparty_key=abonent, look_first=False)
    hasty.close()
    assert not err.value.permanent and err.value.uncertain and err.value.status is None
    # The hung request goes through after all; the next attempt finds it instead of posting twice.
    deadline = time.monotonic() + 3
    while not emu.state(DOCUMENT) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.ensure_call(consultation(), ref_key=ours, counterparty_key=abonent,
                              look_first=True)["ref_key"] == ours
    assert len(emu.state(DOCUMENT)) == 1


def test_wrong_password_is_permanent_401_without_the_password(emu):
    onec = OneCClient(emu.base, USER, "wrong-пароль-42", timeout=(2.0, 5.0))
    with pytest.raises(SyncError) as err:
        onec.get_call(new_key())
    onec.close()
    assert err.value.permanent and err.value.status == 401
    assert "wrong-пароль-42" not in str(err.value) and "401" in str(err.value)


def test_cyrillic_user_name_and_password_work():
    with ServerThread(create_app(user="Оператор ЦЛ", password="пароль ё")) as srv:
        onec = OneCClient(f"{srv.url}/cl/odata/standard.odata", "Оператор ЦЛ", "пароль ё", timeout=(2.0, 5.0))
        key = counterparty(onec)
        assert onec.ensure_call(consultation(), ref_key=new_key(), counterparty_key=key,
                                look_first=False)["number"] == "00000000001"
        onec.close()


def test_changes_since_pages_in_order_and_maps_statuses(emu, client):
    first, second = counterparty(client), counterparty(client, inn="987654321")
    since = datetime.now(UTC) - timedelta(seconds=2)
    keys = [client.ensure_call(consultation(), ref_key=new_key(), counterparty_key=abonent,
                               look_first=False)["ref_key"]
            for abonent in (first, first, first, second, second)]
    patches = [
        {"ВидОбращения": "КонсультацияИТС", "Конец": "2025-03-10T15:00:00"},
        {"ВидОбращения": "Другое", "ЗакрытоБезКонсультации": True},
        {"ВидОбращения": ""},
        {"DeletionMark": True},
    ]
    for key, patch in zip(keys, patches, strict=False):
        resp = emu.odata("PATCH", f"{quote(DOCUMENT)}(guid'{key}')", json=patch)
        assert resp.status_code == 200 and resp.json()["ДатаИзменения"] != "0001-01-01T00:00:00"
    gets_before = emu.stats().get(ODATA_GETS, 0)

    changes = list(client.changes_since(since, page_size=2))

    # Keyset pages of 2: each starts again at the newest change seen, so it may re-read that one row (deduped).
    assert 3 <= emu.stats()[ODATA_GETS] - gets_before <= 5
    assert sorted(c["ref_key"] for c in changes) == sorted(keys)
    assert changes == sorted(changes, key=lambda c: (c["modified_at"], c["ref_key"]))
    by_key = {c["ref_key"]: c for c in changes}
    assert [by_key[k]["status"] for k in keys] == ["closed", "other", "new", "pending", "pending"]
    assert by_key[keys[0]]["ended_at"] == datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
    assert by_key[keys[1]]["closed_without_consultation"] is True and by_key[keys[1]]["kind"] == "Другое"
    assert by_key[keys[3]]["deleted"] is True
    assert all(c["modified_at"].tzinfo is not None and c["number"] for c in changes)
    assert list(client.changes_since(datetime.now(UTC) + timedelta(hours=1))) == []


def test_changes_since_does_not_lose_a_row_when_an_earlier_one_changes_while_paging(emu, client):
    abonent = counterparty(client)
    since = datetime.now(UTC) - timedelta(seconds=2)
    keys = [client.ensure_call(consultation(), ref_key=new_key(), counterparty_key=abonent,
                               look_first=False)["ref_key"] for _ in range(3)]
    time.sleep(1.1)  # the edit below lands in a later second than the three documents
    seen = []
    for n, change in enumerate(client.changes_since(since, page_size=2)):
        seen.append(change["ref_key"])
        if n == 1:  # after the first page, a consultant edits the first document in 1C
            resp = emu.odata("PATCH", f"{quote(DOCUMENT)}(guid'{seen[0]}')", json={"Тема": "уточнили"})
            assert resp.status_code == 200
    assert set(keys) <= set(seen)


def test_clean_and_local_dates(client):
    raw = {"odata.metadata": "x", "Абонент@navigationLinkUrl": "y", "ИНН": "123456789     ",
           "Абонент_Key": "00000000-0000-0000-0000-000000000000", "Конец": "0001-01-01T00:00:00",
           "Rows": [{"LineNumber": "1", "Вид_Key": "00000000-0000-0000-0000-000000000000"}]}
    assert clean(raw) == {"ИНН": "123456789", "Абонент_Key": None, "Конец": None,
                          "Rows": [{"LineNumber": "1", "Вид_Key": None}]}
    moment = datetime(2025, 1, 1, 19, 30, 15, 999, tzinfo=UTC)
    assert client.to_local(moment) == "2025-01-02T00:30:15"
    assert client.from_local("2025-01-02T00:30:15") == moment.replace(microsecond=0)
    assert client.from_local("0001-01-01T00:00:00") is None


def test_query_strings_escape_spaces_and_plus(emu, client):
    emu.create(CATALOG, {"Description": "A+B O'Neil", "Parent_Key": FOLDER})
    flt = "Description eq 'A+B O''Neil'"
    resp = client._call("GET", quote(CATALOG), [("$filter", flt)])
    assert [row["Description"] for row in resp.json()["value"]] == ["A+B O'Neil"]


# --- the emulator itself -----------------------------------------------------------------------------------

def test_emulator_plus_in_query_is_500(emu):
    resp = emu.odata("GET", quote(CATALOG), "$format=json&$filter=DeletionMark+eq+false")
    assert resp.status_code == 500


def test_emulator_without_format_answers_atom_not_json(emu):
    resp = emu.session.get(f"{emu.base}{quote(CATALOG)}", timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/atom+xml")
    with pytest.raises(ValueError):
        resp.json()
    resp = emu.session.get(f"{emu.base}{quote(CATALOG)}", headers={"Accept": "application/json"}, timeout=5)
    assert resp.json()["odata.metadata"].endswith(f"$metadata#{CATALOG}")


@pytest.mark.parametrize("query", ["$filter=Нет%20eq%201", "$select=Ref_Key,Нет", "$orderby=Нет%20asc"])
def test_emulator_unknown_field_is_400_code_14(emu, query):
    resp = emu.odata("GET", quote(CATALOG), f"$format=json&{query}")
    assert resp.status_code == 400 and resp.json()["odata.error"]["code"] == "14"


def test_emulator_not_found_codes_and_long_url(emu):
    assert emu.odata("GET", "Catalog_Нет").json()["odata.error"]["code"] == "8"
    resp = emu.odata("GET", f"{quote(DOCUMENT)}(guid'{new_key()}')")
    assert resp.status_code == 404 and resp.json()["odata.error"]["code"] == "9"
    ors = "%20or%20".join(f"Ref_Key%20eq%20guid'{new_key()}'" for _ in range(60))
    resp = emu.odata("GET", quote(CATALOG), f"$format=json&$filter={ors}")
    assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("text/html")


def test_emulator_writes(emu):
    key = new_key()
    body = {"Ref_Key": key.upper(), "Description": "X", "Неизвестное": 1,
            "КонтактнаяИнформация": [{"LineNumber": 1, "Тип": "Телефон", "Представление": "1"}]}
    created = emu.odata("POST", quote(CATALOG), json=body)
    assert created.status_code == 201 and created.json()["Ref_Key"] == key
    assert created.json()["odata.metadata"].endswith(f"#{CATALOG}/@Element")
    assert quote(CATALOG) not in created.headers["Location"]  # raw UTF-8, not percent-encoded
    again = emu.odata("POST", quote(CATALOG), json=body)
    assert again.status_code == 400 and again.json()["odata.error"]["code"] == "15"
    no_line = emu.odata("POST", quote(CATALOG), json={"КонтактнаяИнформация": [{"Тип": "Телефон"}]})
    assert no_line.status_code == 500
    from_two = emu.odata("POST", quote(CATALOG), json={"КонтактнаяИнформация": [{"LineNumber": "2"}]})
    assert from_two.status_code == 400
    patched = emu.odata("PATCH", f"{quote(CATALOG)}(guid'{key}')", json={"DeletionMark": True})
    assert patched.status_code == 200 and patched.json()["DeletionMark"] is True
    assert patched.json()["Description"] == "X"
    assert emu.odata("DELETE", f"{quote(CATALOG)}(guid'{key}')").status_code == 204
    assert emu.odata("GET", f"{quote(CATALOG)}(guid'{key}')").status_code == 404


def test_emulator_document_post_action_and_required_abonent(emu):
    empty = emu.odata("POST", quote(DOCUMENT), json={"Описание": "без абонента"})
    assert empty.status_code == 500 and empty.json()["odata.error"]["code"] == "-1"
    abonent = emu.create(CATALOG, {"Description": "A"})["Ref_Key"]
    doc = emu.create(DOCUMENT, {"Абонент_Key": abonent})
    assert doc["Number"] == "00000000001" and doc["Posted"] is False
    resp = emu.odata("POST", f"{quote(DOCUMENT)}(guid'{doc['Ref_Key']}')/Post",
                     "$format=json&PostingModeOperational=false")
    assert resp.status_code == 200 and resp.content == b""
    assert emu.state(DOCUMENT)[0]["Posted"] is True


def test_emulator_query_options(emu):
    folder_filter = f"Parent_Key%20eq%20guid'{FOLDER}'"
    for n in range(5):
        emu.create(CATALOG, {"Description": f"Item {n}", "Parent_Key": FOLDER, "ИНН": f"00000000{n}"})
    query = (f"$format=json&$filter={folder_filter}&$orderby=Description%20desc"
             "&$skip=1&$top=2&$inlinecount=allpages&$select=Description")
    resp = emu.odata("GET", quote(CATALOG), query)
    data = resp.json()
    assert data["odata.count"] == "5"
    assert [row["Description"] for row in data["value"]] == ["Item 3", "Item 2"]
    assert list(data["value"][0]) == ["Description"]
    flt = ("(ИНН%20eq%20'000000001'%20or%20ИНН%20eq%20'000000004')%20and%20not%20DeletionMark"
           "%20and%20Code%20ne%20'x'")
    rows = emu.odata("GET", quote(CATALOG), f"$format=json&$filter={flt}&$orderby=ИНН").json()["value"]
    assert [row["ИНН"].rstrip() for row in rows] == ["000000001", "000000004"]
    abonent = rows[0]["Ref_Key"]
    emu.create(DOCUMENT, {"Абонент_Key": abonent})
    nav = f"$format=json&$filter=Абонент/Parent_Key%20eq%20guid'{FOLDER}'"
    assert len(emu.odata("GET", quote(DOCUMENT), nav).json()["value"]) == 1
    since = "$format=json&$filter=ДатаИзменения%20ge%20datetime'2000-01-01T00:00:00'"
    assert len(emu.odata("GET", quote(DOCUMENT), since).json()["value"]) == 1
    bad = emu.odata("GET", quote(DOCUMENT), "$format=json&$filter=Date%20ge%20datetime'2000-01-01'")
    assert bad.status_code == 400


def test_emulator_requires_utf8_basic_auth(emu):
    resp = requests.get(f"{emu.base}{quote(CATALOG)}?$format=json",
                        auth=(b"Administrator", PASSWORD.encode()), timeout=5)
    assert resp.status_code == 401
    assert emu.odata("GET", quote(CATALOG)).status_code == 200
