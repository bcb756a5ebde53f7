"""The first schema: clients, consultations, the sync outbox, idempotency records, webhook deliveries,
job state. Frozen copies of the models as they were, so later model changes do not rewrite history."""
from peewee import *  # noqa: F403 (a frozen schema reads best with the names bare)


def up(migrator, db):
    class Client(Model):
        id = CharField(primary_key=True, max_length=36)
        client_id_hash = CharField(unique=True, null=True)
        identity = CharField(unique=True, max_length=600)
        email = CharField(null=True, max_length=254)
        phone_number = CharField(null=True, max_length=20)
        org_inn = CharField(null=True, max_length=14)
        country = CharField(null=True)
        region = CharField(null=True)
        city = CharField(null=True)
        org_id = CharField(null=True)
        subs_id = CharField(null=True)
        subs_start = DateTimeField(null=True)
        subs_end = DateTimeField(null=True)
        tariff_id = CharField(null=True)
        tariffperiod_id = CharField(null=True)
        cl_ref_key = CharField(null=True, max_length=36)
        chatwoot_contact_id = IntegerField(null=True)
        chatwoot_source_id = CharField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'client'
    db.create_tables([Client])

    class Consultation(Model):
        id = CharField(primary_key=True, max_length=36)
        client = ForeignKeyField(Client, on_delete='RESTRICT')
        cons_id = CharField(unique=True, null=True, max_length=32)
        cl_ref_key = CharField(unique=True, null=True, max_length=36)
        number = CharField(null=True, max_length=32)
        status = CharField(max_length=16, default='new')
        org_inn = CharField(null=True, max_length=14)
        counterparty_ref_key = CharField(null=True, max_length=36)
        lang = CharField(max_length=2, default='ru')
        comment = TextField()
        topic = CharField(null=True)
        online_question_cat = CharField(null=True, max_length=36)
        online_question = CharField(null=True, max_length=36)
        importance = IntegerField(null=True)
        source = CharField(max_length=16, default='SITE')
        scheduled_at = DateTimeField(null=True)
        end_date = DateTimeField(null=True)
        fingerprint = CharField(max_length=64)
        active_fingerprint = CharField(unique=True, null=True, max_length=64)
        chatwoot_status_at = DateTimeField(null=True)
        onec_modified_at = DateTimeField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'consultation'
            indexes = ((('client', 'created_at'), False),)
    db.create_tables([Consultation])

    class IdempotencyRecord(Model):
        key = CharField(primary_key=True, max_length=64)
        request_hash = CharField(max_length=64)
        consultation = ForeignKeyField(Consultation, null=True, on_delete='CASCADE')
        status_code = IntegerField(null=True)
        response_body = TextField(null=True)
        created_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'idempotency_record'
    db.create_tables([IdempotencyRecord])

    class JobState(Model):
        name = CharField(primary_key=True, max_length=64)
        value = TextField(null=True)
        lease_owner = CharField(null=True, max_length=64)
        lease_until = DateTimeField(null=True)
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'job_state'
    db.create_tables([JobState])

    class SyncTask(Model):
        id = CharField(primary_key=True, max_length=36)
        consultation = ForeignKeyField(Consultation, on_delete='CASCADE')
        target = CharField(max_length=16)
        state = CharField(max_length=16, default='pending')
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField()
        lease_owner = CharField(null=True, max_length=64)
        lease_until = DateTimeField(null=True)
        last_error = TextField(null=True)
        uncertain = BooleanField(default=False)
        external_id = CharField(null=True, max_length=64)
        request_id = CharField(null=True, max_length=64)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'sync_task'
            indexes = ((('consultation', 'target'), True), (('state', 'next_attempt_at'), False))
    db.create_tables([SyncTask])

    class WebhookDelivery(Model):
        delivery_id = CharField(primary_key=True, max_length=64)
        received_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'webhook_delivery'
    db.create_tables([WebhookDelivery])

    # Due tasks are looked up by time among pending ones only; a partial index keeps that scan small on both engines.
    db.execute_sql("CREATE INDEX sync_task_due ON sync_task (next_attempt_at) WHERE state = 'pending'")


def down(migrator, db):
    migrator.migrate(migrator.drop_table('webhook_delivery'))
    migrator.migrate(migrator.drop_table('sync_task'))
    migrator.migrate(migrator.drop_table('job_state'))
    migrator.migrate(migrator.drop_table('idempotency_record'))
    migrator.migrate(migrator.drop_table('consultation'))
    migrator.migrate(migrator.drop_table('client'))
