"""Response examples for the OpenAPI document, matching frontend-api.ru.md."""

CLIENT_ID = "0b7e3a52-4a8f-4c57-9d0e-1f0b8f2d9a11"
CONSULTATION_ID = "5d0c8e0e-2f7a-4b8e-a1f4-3c9b0e6d2a77"
SYNC_DONE = {"chatwoot": {"state": "done", "error": None}, "onec": {"state": "done", "error": None}}

CLIENT = {
    "client_id": CLIENT_ID, "email": "user@example.com", "phone_number": "+998901234567", "country": "UZ",
    "region": "Tashkent", "city": "Tashkent", "org_inn": "123456789", "org_id": "org-123", "subs_id": "SUB-123",
    "subs_start": "2025-01-01T00:00:00Z", "subs_end": "2025-12-31T23:59:59Z", "tariff_id": "PRO",
    "tariffperiod_id": "MONTHLY", "cl_ref_key": "7ccd31ca-887b-11eb-938b-00e04cd03b68",
    "client_id_hash": "optional-hash", "created_at": "2025-11-25T10:00:00Z", "updated_at": "2025-11-25T10:00:00Z",
}

CONSULTATION = {
    "consultation_id": CONSULTATION_ID, "cons_id": "1042", "cl_ref_key": "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "client_id": CLIENT_ID, "number": "00000522222", "status": "new", "org_inn": "123456789",
    "create_date": "2025-11-25T10:00:00Z", "start_date": "2025-12-01T10:00:00Z", "end_date": None, "lang": "ru",
    "comment": "Нужна консультация по НДС", "topic": "Бухгалтерия",
    "online_question_cat": "3f8a3c1e-8a4b-4c1e-9f00-000000000001",
    "online_question": "3f8a3c1e-8a4b-4c1e-9f00-000000000002", "importance": 2, "source": "SITE",
    "scheduled_at": "2025-12-01T10:00:00Z", "created_at": "2025-11-25T10:00:00Z",
    "updated_at": "2025-11-25T10:00:00Z", "sync": SYNC_DONE,
}

CREATED = {"consultation": CONSULTATION, "client_id": CLIENT_ID, "message": "Consultation created successfully"}

TICKETS = {
    "tickets": [
        {"consultation_id": CONSULTATION_ID, "cons_id": "1042", "number": "00000522222", "status": "closed",
         "comment": "Консультация завершена", "scheduled_at": None, "end_date": "2025-11-25T12:00:00Z",
         "created_at": "2025-11-25T10:00:00Z"},
    ],
    "total": 1,
}

HEALTH = {
    "status": "ok", "database": "ok", "version": "1.0.0",
    "upstreams": {
        "chatwoot": {"configured": True, "pending": 0, "failed": 0, "last_success": "2025-11-25T10:00:00Z",
                     "breaker": "closed"},
        "onec": {"configured": True, "pending": 2, "failed": 0, "last_success": "2025-11-25T09:59:00Z",
                 "breaker": "closed"},
    },
}
