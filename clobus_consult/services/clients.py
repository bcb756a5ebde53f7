"""Find-or-create of clients, in the order contract.md sets: client_id, client_id_hash, identity triple, new."""
from ..fields import canonical_uuid
from ..models import Client, utcnow
from ..prepared import Prepared, insert_rows
from . import ServiceError

BY_ID = Prepared(lambda p: Client.select().where(Client.id == p))
BY_HASH = Prepared(lambda p: Client.select().where(Client.client_id_hash == p))
BY_IDENTITY = Prepared(lambda p: Client.select().where(Client.identity == p))

IDENTITY_FIELDS = ("email", "phone_number", "org_inn")
UPDATABLE = (
    "email", "phone_number", "country", "region", "city", "org_inn", "org_id", "subs_id", "subs_start",
    "subs_end", "tariff_id", "tariffperiod_id", "cl_ref_key", "client_id_hash",
)


def identity_of(values: dict) -> str:
    """The normalised (email, phone, inn) triple as one comparable string; absent parts count as empty."""
    return "|".join(values.get(name) or "" for name in IDENTITY_FIELDS)


def _apply(client: Client, data: dict) -> None:
    for name in UPDATABLE:
        if data.get(name) is not None:
            setattr(client, name, data[name])
    client.identity = identity_of(client.__data__)


def _save_updated(client: Client, data: dict) -> Client:
    before = dict(client.__data__)
    _apply(client, data)
    if client.__data__ != before:
        other = Client.get_or_none((Client.identity == client.identity) & (Client.id != client.id))
        if other is not None:
            raise ServiceError(409, "Another client already has this email, phone_number and org_inn")
        if data.get("client_id_hash") and data["client_id_hash"] != before.get("client_id_hash"):
            if Client.get_or_none((Client.client_id_hash == data["client_id_hash"]) & (Client.id != client.id)):
                raise ServiceError(409, "Another client already has this client_id_hash")
        client.updated_at = utcnow()
        client.save()
    return client


def find_client(client_id: str) -> Client | None:
    """By the service's own id (any UUID spelling), or None."""
    canonical = canonical_uuid(client_id)
    return BY_ID.first(Client, canonical) if canonical else None


def find_client_by_hash(client_hash: str) -> Client | None:
    # No stored hash holds NUL, and PostgreSQL refuses such a string outright: not found, not a 500.
    return None if "\x00" in client_hash else BY_HASH.first(Client, client_hash)


def resolve_client(data: dict) -> tuple[Client, bool]:
    """Return (client, created). Must run inside a write transaction. Raises ServiceError for 404/409/422."""
    data = {k: v for k, v in data.items() if v is not None}
    if data.get("client_id"):
        client = BY_ID.first(Client, data["client_id"])
        if client is None:
            raise ServiceError(404, "Client not found")
        return _save_updated(client, data), False
    if data.get("client_id_hash"):
        client = BY_HASH.first(Client, data["client_id_hash"])
        if client is not None:
            return _save_updated(client, data), False
    identity = identity_of(data)
    client = BY_IDENTITY.first(Client, identity)
    if client is not None:
        return _save_updated(client, data), False
    if not (data.get("email") or data.get("phone_number")):
        raise ServiceError(
            422, "Validation error",
            {"json": {"_schema": ["A new client needs at least one of email or phone_number."]}},
        )
    now = utcnow()
    client = Client(identity=identity, created_at=now, updated_at=now)
    _apply(client, data)
    insert_rows(Client, [client.__data__])
    return client, True
