"""Client resolution (contract.md "Identity and data"): client_id, then hash, then the identity triple."""
from .conftest import AUTH


def upsert(client, **fields):
    r = client.post("/api/clients", json=fields, headers=AUTH)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_create_returns_the_documented_shape(client):
    body = upsert(client, email="user@example.com", phone_number="+998901234567", country="UZ", region="Tashkent",
                  city="Tashkent", org_inn="123456789", org_id="org-123", subs_id="SUB-123",
                  subs_start="2025-01-01T00:00:00Z", subs_end="2025-12-31T23:59:59Z", tariff_id="PRO",
                  tariffperiod_id="MONTHLY", cl_ref_key="7ccd31ca-887b-11eb-938b-00e04cd03b68",
                  client_id_hash="hash-1")
    assert body["subs_start"] == "2025-01-01T00:00:00Z" and body["subs_end"] == "2025-12-31T23:59:59Z"
    assert body["tariff_id"] == "PRO" and body["cl_ref_key"] == "7ccd31ca-887b-11eb-938b-00e04cd03b68"
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")
    assert client.get(f"/api/clients/{body['client_id']}", headers=AUTH).get_json() == body
    assert client.get("/api/clients/by-hash/hash-1", headers=AUTH).get_json() == body


def test_same_triple_resolves_to_the_same_client(client):
    a = upsert(client, email="A@Example.com", phone_number="901234567", org_inn="123456789")
    b = upsert(client, email="a@example.com", phone_number="+998901234567", org_inn="123 456 789", city="Bukhara")
    assert a["client_id"] == b["client_id"] and b["city"] == "Bukhara"


def test_absent_parts_of_the_triple_count(client):
    a = upsert(client, email="a@example.com", phone_number="+998901234567")
    b = upsert(client, email="a@example.com")
    assert a["client_id"] != b["client_id"]


def test_client_id_wins_and_updates(client):
    a = upsert(client, email="a@example.com")
    b = upsert(client, client_id=a["client_id"], phone_number="+998901234568", city="Samarkand")
    assert b["client_id"] == a["client_id"]
    assert b["email"] == "a@example.com" and b["phone_number"] == "+998901234568" and b["city"] == "Samarkand"


def test_unknown_client_id_is_404(client):
    r = client.post("/api/clients", json={"client_id": "00000000-0000-4000-8000-000000000000", "email": "a@b.co"},
                    headers=AUTH)
    assert r.status_code == 404 and r.get_json() == {"detail": "Client not found"}


def test_known_hash_updates_that_client(client):
    a = upsert(client, email="a@example.com", client_id_hash="h")
    b = upsert(client, client_id_hash="h", email="b@example.com")
    assert b["client_id"] == a["client_id"] and b["email"] == "b@example.com"


def test_unknown_hash_is_kept_on_a_new_client(client):
    a = upsert(client, email="new@example.com", client_id_hash="fresh-hash")
    assert a["client_id_hash"] == "fresh-hash"
    assert client.get("/api/clients/by-hash/fresh-hash", headers=AUTH).get_json()["client_id"] == a["client_id"]


def test_update_that_would_clone_another_client_is_409(client):
    upsert(client, email="a@example.com")
    b = upsert(client, email="b@example.com")
    r = client.post("/api/clients", json={"client_id": b["client_id"], "email": "a@example.com"}, headers=AUTH)
    assert r.status_code == 409 and isinstance(r.get_json()["detail"], str)


def test_new_client_needs_email_or_phone(client):
    r = client.post("/api/clients", json={"org_inn": "123456789"}, headers=AUTH)
    assert r.status_code == 422 and r.get_json()["detail"] == "Validation error"
