"""The OpenAPI document, Swagger UI and the health endpoint: open without a token."""


def test_health_is_open_and_reports_upstreams(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert set(body["upstreams"]) == {"chatwoot", "onec"}
    assert body["upstreams"]["chatwoot"]["configured"] is False


def test_openapi_lists_every_documented_path_with_examples(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    paths = spec["paths"]
    expected = {
        "/api/consultations/create": "post", "/api/consultations/simple": "post", "/api/clients": "post",
        "/api/clients/{client_id}": "get", "/api/clients/by-hash/{client_hash}": "get",
        "/api/tickets/{cons_id}": "get", "/api/tickets/clients/{client_id}/tickets": "get", "/api/health": "get",
    }
    for path, method in expected.items():
        assert method in paths[path], path
        op = paths[path][method]
        assert op.get("summary"), path
        assert op["responses"]["200"]["content"]["application/json"].get("example"), path
    for path in ("/api/consultations/create", "/api/consultations/simple", "/api/clients"):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]
        assert body.get("example"), path
    schemas = spec["components"]["schemas"]
    assert {"CreateConsultationIn", "CreateConsultationOut", "ClientIn", "ClientOut", "ConsultationOut",
            "TicketList", "Error"} <= set(schemas)
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert paths["/api/health"]["get"]["security"] == []


def test_swagger_ui_is_served(client):
    r = client.get("/docs")
    assert r.status_code == 200 and b"swagger" in r.data.lower()


def test_every_response_carries_a_request_id(client):
    r = client.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    assert len(client.get("/api/health").headers["X-Request-ID"]) == 32
