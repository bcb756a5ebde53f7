"""Clients, consultations and the outbox of sync tasks.

All datetimes are stored as naive UTC. Ids are UUID strings the service assigns.
Uniqueness that the API promises is held by the database, not by a read-then-write:
- ``Client.identity`` (normalised email|phone|inn) and ``Client.client_id_hash``;
- ``Consultation.active_fingerprint``: set while a consultation can still absorb an identical request
  (not closed, younger than 24 h); cleared when it closes or when a newer one takes the fingerprint over;
- ``IdempotencyRecord.key`` (caller, path and Idempotency-Key, hashed);
- one ``SyncTask`` per (consultation, target).
"""
import datetime as dt
import uuid

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    SqliteDatabase,
    TextField,
)

from .db import db


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False
        # save() writes only the fields that changed: two writers settling different upstreams on one row
        # must not put back each other's stale values.
        only_save_dirty = True

    @classmethod
    def get_for_update(cls, *where):
        """Read a row to change it: locked on PostgreSQL (SQLite's write transaction already serialises)."""
        query = cls.select().where(*where)
        if not isinstance(db.obj, SqliteDatabase):
            query = query.for_update()
        return query.get_or_none()


class Client(BaseModel):
    id = CharField(primary_key=True, max_length=36, default=new_id)
    client_id_hash = CharField(null=True, unique=True, max_length=255)
    identity = CharField(unique=True, max_length=600)
    email = CharField(null=True, max_length=254)
    phone_number = CharField(null=True, max_length=20)
    org_inn = CharField(null=True, max_length=14)
    country = CharField(null=True, max_length=255)
    region = CharField(null=True, max_length=255)
    city = CharField(null=True, max_length=255)
    org_id = CharField(null=True, max_length=255)
    subs_id = CharField(null=True, max_length=255)
    subs_start = DateTimeField(null=True)
    subs_end = DateTimeField(null=True)
    tariff_id = CharField(null=True, max_length=255)
    tariffperiod_id = CharField(null=True, max_length=255)
    cl_ref_key = CharField(null=True, max_length=36)
    chatwoot_contact_id = IntegerField(null=True)
    chatwoot_source_id = CharField(null=True, max_length=255)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class Consultation(BaseModel):
    id = CharField(primary_key=True, max_length=36, default=new_id)
    client = ForeignKeyField(Client, backref="consultations", on_delete="RESTRICT")
    cons_id = CharField(null=True, unique=True, max_length=32)
    cl_ref_key = CharField(null=True, unique=True, max_length=36)
    number = CharField(null=True, max_length=32)
    status = CharField(default="new", max_length=16)
    org_inn = CharField(null=True, max_length=14)
    counterparty_ref_key = CharField(null=True, max_length=36)
    lang = CharField(default="ru", max_length=2)
    comment = TextField()
    topic = CharField(null=True, max_length=255)
    online_question_cat = CharField(null=True, max_length=36)
    online_question = CharField(null=True, max_length=36)
    importance = IntegerField(null=True)
    source = CharField(default="SITE", max_length=16)
    scheduled_at = DateTimeField(null=True)
    end_date = DateTimeField(null=True)
    fingerprint = CharField(max_length=64)
    active_fingerprint = CharField(null=True, unique=True, max_length=64)
    chatwoot_status_at = DateTimeField(null=True)
    onec_modified_at = DateTimeField(null=True)
    chatwoot_status = CharField(null=True, max_length=16)  # the conversation's status as last reported
    onec_status = CharField(null=True, max_length=16)  # ВидОбращения, mapped, as last pulled
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("client", "created_at"), False),)


class SyncTask(BaseModel):
    TARGETS = ("chatwoot", "onec")

    id = CharField(primary_key=True, max_length=36, default=new_id)
    consultation = ForeignKeyField(Consultation, backref="sync_tasks", on_delete="CASCADE")
    target = CharField(max_length=16)
    state = CharField(default="pending", max_length=16)  # pending | done | failed | disabled
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    lease_owner = CharField(null=True, max_length=64)
    lease_until = DateTimeField(null=True)
    last_error = TextField(null=True)
    uncertain = BooleanField(default=False)
    external_id = CharField(null=True, max_length=64)
    request_id = CharField(null=True, max_length=64)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("consultation", "target"), True),
            (("state", "next_attempt_at"), False),
        )


class IdempotencyRecord(BaseModel):
    key = CharField(primary_key=True, max_length=64)
    request_hash = CharField(max_length=64)
    consultation = ForeignKeyField(Consultation, null=True, on_delete="CASCADE")
    status_code = IntegerField(null=True)
    response_body = TextField(null=True)
    created_at = DateTimeField(default=utcnow, index=True)


class WebhookDelivery(BaseModel):
    delivery_id = CharField(primary_key=True, max_length=64)
    received_at = DateTimeField(default=utcnow, index=True)


class JobState(BaseModel):
    """Small key/value rows for singleton jobs: leases and high-water marks."""

    name = CharField(primary_key=True, max_length=64)
    value = TextField(null=True)
    lease_owner = CharField(null=True, max_length=64)
    lease_until = DateTimeField(null=True)
    updated_at = DateTimeField(default=utcnow)


MODELS = [Client, Consultation, SyncTask, IdempotencyRecord, WebhookDelivery, JobState]
