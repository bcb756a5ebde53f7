"""POST /api/webhooks/chatwoot: conversation status changes from Chatwoot.

Authenticity: with CHATWOOT_WEBHOOK_SECRET, the ``X-Chatwoot-Signature`` (HMAC-SHA256 over
"<timestamp>.<raw body>") and a timestamp within 5 minutes; for Chatwoot versions that do not sign,
``?token=<CHATWOOT_WEBHOOK_TOKEN>``. Both compared in constant time. With neither configured: 404.
Deliveries arrive unordered and sometimes twice: repeated delivery ids are ignored, and an event older than
the last one applied to that conversation changes nothing (``services.status``).
"""
import datetime as dt
import hashlib
import hmac
import json
import time

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from peewee import IntegrityError

from .. import security
from ..db import write_transaction
from ..models import WebhookDelivery
from ..services.status import apply_chatwoot_status
from . import Blueprint

blp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks", description="Incoming upstream events")
# Chatwoot sends bursts from one address: only the per-IP limit applies here, the signature does the rest.
security.limiter.limit(lambda: current_app.config["RATELIMIT_PER_IP"], key_func=security.ip_key, scope="ip")(blp)

MAX_SKEW_SECONDS = 300
STATUS_EVENTS = ("conversation_status_changed", "conversation_updated")


def _verify_signature(secret: str) -> bool:
    signature = request.headers.get("X-Chatwoot-Signature", "")
    timestamp = request.headers.get("X-Chatwoot-Timestamp", "")
    if not signature.startswith("sha256=") or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
        abort(401, message="Stale webhook timestamp")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request.get_data(cache=True),
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature[7:].encode(), expected.encode())


def _verify_token(token: str) -> bool:
    given = request.args.get("token", "")
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode())


def _authenticate() -> None:
    secret = current_app.config.get("CHATWOOT_WEBHOOK_SECRET")
    token = current_app.config.get("CHATWOOT_WEBHOOK_TOKEN")
    if not secret and not token:
        abort(404, message="Not found")
    if secret and request.headers.get("X-Chatwoot-Signature"):
        if _verify_signature(secret):
            return
    elif token and _verify_token(token):
        return
    abort(401, message="Invalid webhook signature")


def _first_delivery(delivery_id: str | None) -> bool:
    if not delivery_id:
        return True
    try:
        with write_transaction():
            WebhookDelivery.create(delivery_id=delivery_id[:64])
    except IntegrityError:
        return False
    return True


def _event_time(payload: dict) -> dt.datetime:
    for key in ("timestamp", "last_activity_at"):
        value = payload.get(key)
        if isinstance(value, int | float) and 0 < value < 2**33:
            return dt.datetime.fromtimestamp(value, dt.UTC)
    header = request.headers.get("X-Chatwoot-Timestamp", "")
    if header.isdigit() and int(header) < 2**33:
        return dt.datetime.fromtimestamp(int(header), dt.UTC)
    return dt.datetime.now(dt.UTC)


@blp.route("/chatwoot")
class ChatwootWebhook(MethodView):
    @blp.doc(security=[], requestBody={"content": {"application/json": {"schema": {"type": "object"}}}})
    @blp.response(200, example={"result": "closed"})
    def post(self):
        """Receive a Chatwoot webhook (signed, or with ?token=)"""
        _authenticate()
        try:
            payload = json.loads(request.get_data(cache=True))
        except (ValueError, RecursionError):
            abort(400, message="Malformed JSON body")
        if not isinstance(payload, dict):
            abort(422, message="Validation error", errors={"json": {"_schema": ["Expected a JSON object."]}})
        if not _first_delivery(request.headers.get("X-Chatwoot-Delivery")):
            return {"result": "duplicate delivery"}
        event, status, conv_id = payload.get("event"), payload.get("status"), payload.get("id")
        if isinstance(conv_id, str) and conv_id.isascii() and conv_id.isdigit():
            conv_id = int(conv_id)
        if event not in STATUS_EVENTS or not isinstance(status, str) or type(conv_id) is not int or conv_id < 0:
            return {"result": "ignored"}  # display ids are non-negative integers; anything else is not ours
        return {"result": apply_chatwoot_status(str(conv_id), status, _event_time(payload))}
