"""POST /api/consultations/create and /simple, as the website calls them (frontend-api.ru.md §1–2)."""
import datetime as dt

CLIENT = {"email": "User@Example.com ", "phone_number": "+998 90 123 45 67", "org_inn": "123456789"}


def create(api, client=None, consultation=None, source="SITE", **kw):
    body = {"client": client if client is not None else dict(CLIENT),
            "consultation": consultation or {"comment": "Нужна консультация по НДС", "lang": "ru"}}
    if source is not None:
        body["source"] = source
    return api.post("/api/consultations/create", json=body, **kw)


def future(**delta):
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).replace(microsecond=0)


def test_create_answers_the_documented_shape(api):
    r = create(api)
    assert r.status_code == 200
    body = r.get_json()
    assert body["message"] == "Consultation created successfully"
    c = body["consultation"]
    assert c["client_id"] == body["client_id"]
    for key in ("cons_id", "cl_ref_key", "client_id", "number", "status", "org_inn", "create_date", "start_date",
                "end_date", "lang", "comment", "online_question_cat", "online_question", "created_at",
                "updated_at", "consultation_id", "topic", "importance", "source", "scheduled_at", "sync"):
        assert key in c, key
    assert c["status"] == "new"
    assert c["cons_id"] is None and c["cl_ref_key"] is None and c["number"] is None  # never invented
    assert c["org_inn"] == "123456789"
    assert c["create_date"].endswith("Z") and c["created_at"] == c["create_date"]
    assert c["sync"] == {"chatwoot": {"state": "disabled", "error": None},
                         "onec": {"state": "disabled", "error": None}}


def test_create_stores_a_normalised_client(api):
    body = create(api).get_json()
    client = api.get(f"/api/clients/{body['client_id']}").get_json()
    assert client["email"] == "user@example.com"
    assert client["phone_number"] == "+998901234567"
    assert client["org_inn"] == "123456789"


def test_all_documented_fields_round_trip(api):
    when = future(days=3)
    consultation = {
        "comment": "Вопрос", "lang": "uz", "topic": "Бухгалтерия", "importance": 3,
        "online_question_cat": "3f8a3c1e-8a4b-4c1e-9f00-000000000001",
        "online_question": "3f8a3c1e-8a4b-4c1e-9f00-000000000002",
        "scheduled_at": when.isoformat().replace("+00:00", "Z"), "org_inn": "12345678901234",
    }
    c = create(api, consultation=consultation, source="TELEGRAM").get_json()["consultation"]
    assert c["lang"] == "uz" and c["topic"] == "Бухгалтерия" and c["importance"] == 3
    assert c["source"] == "TELEGRAM" and c["org_inn"] == "12345678901234"
    assert c["scheduled_at"] == c["start_date"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert c["online_question"] == consultation["online_question"]
    ticket = api.get(f"/api/tickets/{c['consultation_id']}").get_json()
    assert ticket == c


def test_scheduled_at_without_offset_is_read_in_tashkent_time(api):
    local = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1, hours=5)).replace(microsecond=0, tzinfo=None)
    c = create(api, consultation={"comment": "q", "scheduled_at": local.isoformat()}).get_json()["consultation"]
    assert c["scheduled_at"] == (local - dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_simple_create_for_an_existing_client(api):
    client_id = create(api).get_json()["client_id"]
    r = api.post("/api/consultations/simple", json={"client_id": client_id, "comment": "Ещё вопрос"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["client_id"] == client_id and body["consultation"]["comment"] == "Ещё вопрос"
    assert body["consultation"]["org_inn"] == "123456789"  # taken from the client


def test_simple_create_with_unknown_client_is_404(api):
    r = api.post("/api/consultations/simple",
                 json={"client_id": "00000000-0000-4000-8000-000000000000", "comment": "x"})
    assert r.status_code == 404 and r.get_json() == {"detail": "Client not found"}


def test_create_with_only_client_id_in_consultation(api):
    client_id = create(api).get_json()["client_id"]
    r = api.post("/api/consultations/create", json={"consultation": {"client_id": client_id, "comment": "x"}})
    assert r.status_code == 200 and r.get_json()["client_id"] == client_id


def test_client_data_or_client_id_is_required(api):
    r = api.post("/api/consultations/create", json={"consultation": {"comment": "x"}})
    assert r.status_code == 400
    assert r.get_json() == {"detail": "Client data or client_id is required"}


def test_new_client_needs_email_or_phone(api):
    r = create(api, client={"org_inn": "123456789"})
    assert r.status_code == 422
    assert r.get_json()["detail"] == "Validation error"
    assert "client" in r.get_json()["errors"]["json"]
    assert api.get("/api/health").status_code == 200


def test_differing_client_ids_are_rejected(api):
    r = create(api, client={"client_id": "00000000-0000-4000-8000-000000000001"},
               consultation={"client_id": "00000000-0000-4000-8000-000000000002", "comment": "x"})
    assert r.status_code == 422
