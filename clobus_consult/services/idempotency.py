"""Idempotency-Key: the same key within 24 h replays the first response; with another body it is a 409."""

import hashlib
import json

from ..db import write_transaction
from ..models import IdempotencyRecord


def record_key(principal: str, path: str, key: str) -> str:
    """Keys are scoped to the caller and the endpoint: one caller cannot replay another's responses."""
    return hashlib.sha256(f"{principal}\n{path}\n{key}".encode()).hexdigest()


def request_hash(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def store_response(key: str, status: int, body: dict) -> None:
    with write_transaction():
        (IdempotencyRecord.update(status_code=status, response_body=json.dumps(body, ensure_ascii=False))
         .where(IdempotencyRecord.key == key).execute())
