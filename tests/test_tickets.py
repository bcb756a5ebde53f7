"""GET /api/tickets/{cons_id} and the paginated list of a client's tickets."""
from clobus_consult.db import db
from clobus_consult.models import Consultation


def make_client(api):
    return api.post("/api/clients", json={"email": "t@example.com"}).get_json()["client_id"]


def ask(api, client_id, comment):
    r = api.post("/api/consultations/simple", json={"client_id": client_id, "comment": comment})
    return r.get_json()["consultation"]


def test_ticket_by_consultation_id_and_by_cons_id(api, app):
    client_id = make_client(api)
    c = ask(api, client_id, "Вопрос")
    assert api.get(f"/api/tickets/{c['consultation_id']}").get_json() == c
    assert api.get(f"/api/tickets/{c['consultation_id'].upper()}").get_json() == c
    with app.app_context(), db.connection_context():
        Consultation.update(cons_id="4242", number="00000522222", status="pending").execute()
    ticket = api.get("/api/tickets/4242").get_json()
    assert ticket["consultation_id"] == c["consultation_id"]
    assert ticket["cons_id"] == "4242" and ticket["number"] == "00000522222" and ticket["status"] == "pending"
    assert ticket["end_date"] is None


def test_list_is_newest_first_and_paged_in_sql(api):
    client_id = make_client(api)
    made = [ask(api, client_id, f"Вопрос {i}")["consultation_id"] for i in range(7)]
    r = api.get(f"/api/tickets/clients/{client_id}/tickets")
    body = r.get_json()
    assert body["total"] == 7
    assert [t["consultation_id"] for t in body["tickets"]] == made[::-1]
    first = body["tickets"][0]
    assert set(first) >= {"cons_id", "number", "status", "comment", "created_at"}
    page = api.get(f"/api/tickets/clients/{client_id}/tickets?skip=2&limit=3").get_json()
    assert page["total"] == 7
    assert [t["consultation_id"] for t in page["tickets"]] == made[::-1][2:5]
    beyond = api.get(f"/api/tickets/clients/{client_id}/tickets?skip=100").get_json()
    assert beyond == {"tickets": [], "total": 7}


def test_list_of_a_client_without_tickets(api):
    client_id = make_client(api)
    assert api.get(f"/api/tickets/clients/{client_id}/tickets").get_json() == {"tickets": [], "total": 0}


def test_other_clients_tickets_are_not_listed(api):
    a = make_client(api)
    b = api.post("/api/clients", json={"email": "other@example.com"}).get_json()["client_id"]
    ask(api, a, "A")
    assert api.get(f"/api/tickets/clients/{b}/tickets").get_json()["total"] == 0
