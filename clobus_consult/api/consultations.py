"""POST /api/consultations/create and /simple: store first, then let the outbox push it upstream."""
import json

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import abort

from .. import auth, security
from ..db import db
from ..models import Consultation
from ..schemas import CreateConsultationIn, CreateConsultationOut, SimpleConsultationIn
from ..services import ServiceError
from ..services import idempotency as idem
from ..services.consultations import create_consultation, find_ticket, fresh_sync_view, sync_view
from ..sync import outbox
from . import Blueprint, documents_errors, examples, json_body

blp = Blueprint("consultations", __name__, url_prefix="/api/consultations",
                description="Consultation requests from the website and the Telegram mini app")
blp.before_request(auth.authenticate)
security.limit_api(blp, create=True)

ERRORS = (400, 401, 404, 409, 413, 415, 422, 429)
IDEMPOTENCY_HEADER = {
    "Idempotency-Key": {
        "description": "Optional. The same key within 24 h returns the first response again and creates "
                       "nothing; the same key with another body is a 409.",
        "schema": {"type": "string", "maxLength": 255},
    }
}


OUT = CreateConsultationOut()


def render(consultation: Consultation, created: bool, sync: dict | None = None) -> dict:
    """The response body, already serialised (it is also what an idempotent replay sends back)."""
    consultation.sync = sync if sync is not None else sync_view(consultation)
    return OUT.dump({
        "consultation": consultation,
        "client_id": consultation.client_id,
        "message": "Consultation created successfully" if created else "Consultation already exists",
    })


def _answer(body: dict, status: int = 200):
    return current_app.response_class(json.dumps(body, ensure_ascii=False), status=status,
                                      mimetype="application/json")


def _replay(record) -> tuple | dict:
    if record.response_body is not None:
        return _answer(json.loads(record.response_body), record.status_code)
    # The first request with this key has stored the consultation and is still talking to the upstreams: its
    # answer is not known yet, and a replay must send that same answer, so ask the caller to come back.
    budget = int(current_app.config["SYNC_INLINE_BUDGET_SECONDS"]) + 1
    abort(409, message="A request with this Idempotency-Key is still in progress; retry shortly",
          headers={"Retry-After": str(budget)})


def intake(client_data: dict | None, fields: dict, source: str):
    """The one path both create endpoints share: dedupe, store, try the upstreams inline, answer."""
    raw_key = request.headers.get("Idempotency-Key")
    idempotency = None
    if raw_key is not None:
        if not raw_key.strip() or len(raw_key) > 255:
            abort(422, message="Validation error",
                  errors={"headers": {"Idempotency-Key": ["Must be 1 to 255 characters."]}})
        key = idem.record_key(g.principal, request.path, raw_key)
        idempotency = (key, idem.request_hash(json_body()))
    targets = outbox.configured_targets(current_app.config)
    inline = any(targets.values())

    def final_answer(consultation, created):
        if created and inline:
            return None  # known only after the inline attempt
        return render(consultation, created, fresh_sync_view(targets) if created else None)

    try:
        consultation, record, created = create_consultation(
            client_data, fields, source, targets=targets, request_id=g.get("request_id"), idempotency=idempotency,
            answer=final_answer,
        )
    except ServiceError as err:
        abort(err.status, message=err.detail, errors=err.errors)
    if record is not None:  # this key was seen: replay (or refuse another body)
        if record.request_hash != idempotency[1]:
            abort(409, message="Idempotency-Key was already used with a different request body")
        return _replay(record)
    if not (created and inline):
        return _answer(final_answer(consultation, created))
    db.close()  # give the connection back while talking to the upstreams
    outbox.sync_inline(current_app, consultation.id)
    db.connect(reuse_if_open=True)
    body = render(find_ticket(consultation.id), created)
    if idempotency:
        idem.store_response(idempotency[0], 200, body)
    return _answer(body)


@blp.route("/create")
class CreateConsultation(MethodView):
    @blp.arguments(CreateConsultationIn(), example={
        "client": {"email": "user@example.com", "phone_number": "+998901234567", "org_inn": "123456789"},
        "consultation": {"comment": "Нужна консультация по НДС", "lang": "ru"},
        "source": "SITE",
    })
    @blp.response(200, CreateConsultationOut, example=examples.CREATED)
    @blp.doc(parameters=[{"in": "header", "name": k, **v} for k, v in IDEMPOTENCY_HEADER.items()])
    @documents_errors(blp, *ERRORS)
    def post(self, data):
        """Create a consultation, creating or updating its client"""
        if not data.get("client") and not data["consultation"].get("client_id"):
            abort(400, message="Client data or client_id is required")
        return intake(data.get("client"), data["consultation"], data["source"])


@blp.route("/simple")
class SimpleConsultation(MethodView):
    @blp.arguments(SimpleConsultationIn(), example={
        "client_id": "0b7e3a52-4a8f-4c57-9d0e-1f0b8f2d9a11", "lang": "ru", "comment": "Нужна консультация по НДС",
    })
    @blp.response(200, CreateConsultationOut, example=examples.CREATED)
    @blp.doc(parameters=[{"in": "header", "name": k, **v} for k, v in IDEMPOTENCY_HEADER.items()])
    @documents_errors(blp, *ERRORS)
    def post(self, data):
        """Create a consultation for a client that already exists"""
        source = data.pop("source")
        return intake(None, data, source)
