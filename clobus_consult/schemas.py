"""Request and response schemas (marshmallow 4). Unknown fields are rejected everywhere (marshmallow's default).

Field names and examples follow ``frontend-api.ru.md``; ``contract.md`` adds consultation_id, topic,
importance, source, scheduled_at, end_date and the sync block.
"""
import datetime as dt

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from .fields import DateTime, DateTimeAlias, Email, Inn, Phone, UUIDString
from .models import utcnow

LANGS = ("ru", "uz")
SOURCES = ("SITE", "TELEGRAM", "CALL_CENTER")
STATUSES = ("new", "pending", "closed", "other")
SYNC_STATES = ("pending", "done", "failed", "disabled")

Str255 = lambda **kw: fields.String(validate=validate.Length(max=255), **kw)  # noqa: E731


class ClientIn(Schema):
    email = Email(allow_none=True, metadata={"example": "user@example.com"})
    phone_number = Phone(allow_none=True, metadata={"example": "+998901234567"})
    country = Str255(allow_none=True, metadata={"example": "UZ"})
    region = Str255(allow_none=True, metadata={"example": "Tashkent"})
    city = Str255(allow_none=True, metadata={"example": "Tashkent"})
    org_inn = Inn(allow_none=True, metadata={"example": "123456789"})
    org_id = Str255(allow_none=True, metadata={"example": "org-123"})
    subs_id = Str255(allow_none=True, metadata={"example": "SUB-123"})
    subs_start = DateTime(allow_none=True, metadata={"example": "2025-01-01T00:00:00Z"})
    subs_end = DateTime(allow_none=True, metadata={"example": "2025-12-31T23:59:59Z"})
    tariff_id = Str255(allow_none=True, metadata={"example": "PRO"})
    tariffperiod_id = Str255(allow_none=True, metadata={"example": "MONTHLY"})
    cl_ref_key = UUIDString(allow_none=True, metadata={"description": "Ref_Key of the counterparty in 1C:ЦЛ"})
    client_id_hash = fields.String(
        allow_none=True, validate=validate.Length(min=1, max=255),
        metadata={"example": "optional-hash-for-existing-client"},
    )
    client_id = UUIDString(allow_none=True, metadata={"description": "UUID of an existing client"})


class ConsultationFields(Schema):
    client_id = UUIDString(allow_none=True, metadata={"description": "UUID of an existing client"})
    cl_ref_key = UUIDString(allow_none=True, metadata={"description": "Ref_Key of the counterparty in 1C:ЦЛ"})
    org_inn = Inn(allow_none=True, metadata={"example": "123456789"})
    lang = fields.String(load_default="ru", validate=validate.OneOf(LANGS), metadata={"example": "ru"})
    comment = fields.String(
        required=True, validate=validate.Length(min=1, max=10_000),
        metadata={"example": "Нужна консультация по НДС"},
    )
    topic = Str255(allow_none=True, metadata={"example": "Бухгалтерия"})
    online_question_cat = UUIDString(allow_none=True, metadata={"description": "Question category key"})
    online_question = UUIDString(allow_none=True, metadata={"description": "Question key"})
    importance = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(1, 3), metadata={"example": 2}
    )
    scheduled_at = DateTime(allow_none=True, metadata={"example": "2025-12-01T10:00:00Z"})

    @validates("comment")
    def _comment_not_blank(self, value, **_kw):
        if not value.strip():
            raise ValidationError("Comment must not be blank.")

    @validates("scheduled_at")
    def _scheduled_in_window(self, value, **_kw):
        if value is None:
            return
        now = utcnow()
        if value < now - dt.timedelta(minutes=1):
            raise ValidationError("scheduled_at must not be in the past.")
        days = current_app.config["MAX_FUTURE_DAYS"]
        if value > now + dt.timedelta(days=days):
            raise ValidationError(f"scheduled_at must be within {days} days from now.")


class SimpleConsultationIn(ConsultationFields):
    client_id = UUIDString(required=True, metadata={"description": "UUID of an existing client"})
    source = fields.String(load_default="SITE", validate=validate.OneOf(SOURCES))


class CreateConsultationIn(Schema):
    client = fields.Nested(ClientIn, allow_none=True)
    consultation = fields.Nested(ConsultationFields, required=True)
    source = fields.String(load_default="SITE", validate=validate.OneOf(SOURCES), metadata={"example": "SITE"})

    @validates_schema
    def _client_ids_agree(self, data, **_kw):
        client, consultation = data.get("client") or {}, data.get("consultation") or {}
        a, b = client.get("client_id"), consultation.get("client_id")
        if a and b and a != b:
            raise ValidationError("client.client_id and consultation.client_id differ.", "consultation")


class PageArgs(Schema):
    skip = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**31 - 1))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class ClientOut(Schema):
    client_id = fields.String(attribute="id", metadata={"example": "0b7e3a52-4a8f-4c57-9d0e-1f0b8f2d9a11"})
    email = fields.String(allow_none=True)
    phone_number = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    org_inn = fields.String(allow_none=True)
    org_id = fields.String(allow_none=True)
    subs_id = fields.String(allow_none=True)
    subs_start = DateTime(allow_none=True)
    subs_end = DateTime(allow_none=True)
    tariff_id = fields.String(allow_none=True)
    tariffperiod_id = fields.String(allow_none=True)
    cl_ref_key = fields.String(allow_none=True)
    client_id_hash = fields.String(allow_none=True)
    created_at = DateTime()
    updated_at = DateTime()


class SyncTargetOut(Schema):
    state = fields.String(validate=validate.OneOf(SYNC_STATES))
    error = fields.String(allow_none=True)


class SyncOut(Schema):
    chatwoot = fields.Nested(SyncTargetOut)
    onec = fields.Nested(SyncTargetOut)


class ConsultationOut(Schema):
    consultation_id = fields.String(attribute="id")
    cons_id = fields.String(allow_none=True, metadata={"example": "42"})
    cl_ref_key = fields.String(allow_none=True)
    client_id = fields.String()
    number = fields.String(allow_none=True, metadata={"example": "00000522222"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    org_inn = fields.String(allow_none=True)
    create_date = DateTimeAlias("created_at")
    start_date = DateTimeAlias("scheduled_at", allow_none=True)
    end_date = DateTime(allow_none=True)
    lang = fields.String()
    comment = fields.String()
    topic = fields.String(allow_none=True)
    online_question_cat = fields.String(allow_none=True)
    online_question = fields.String(allow_none=True)
    importance = fields.Integer(allow_none=True)
    source = fields.String()
    scheduled_at = DateTime(allow_none=True)
    created_at = DateTime()
    updated_at = DateTime()
    sync = fields.Nested(SyncOut)


class CreateConsultationOut(Schema):
    consultation = fields.Nested(ConsultationOut)
    client_id = fields.String()
    message = fields.String(metadata={"example": "Consultation created successfully"})


class TicketListItem(Schema):
    consultation_id = fields.String(attribute="id")
    cons_id = fields.String(allow_none=True)
    number = fields.String(allow_none=True)
    status = fields.String()
    comment = fields.String()
    scheduled_at = DateTime(allow_none=True)
    end_date = DateTime(allow_none=True)
    created_at = DateTime()


class TicketList(Schema):
    tickets = fields.List(fields.Nested(TicketListItem))
    total = fields.Integer()


class UpstreamHealth(Schema):
    configured = fields.Boolean()
    pending = fields.Integer()
    failed = fields.Integer()
    last_success = DateTime(allow_none=True)
    breaker = fields.String()


class HealthOut(Schema):
    status = fields.String(metadata={"example": "ok"})
    database = fields.String(metadata={"example": "ok"})
    version = fields.String()
    upstreams = fields.Dict(keys=fields.String(), values=fields.Nested(UpstreamHealth))


class ReadyOut(Schema):
    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(keys=fields.String(), values=fields.String())
    upstreams = fields.Dict(keys=fields.String(), values=fields.Nested(UpstreamHealth))
