"""Tickets: one consultation by Chatwoot's cons_id or its consultation_id, and a client's list."""
from flask.views import MethodView
from flask_smorest import abort

from .. import auth, security
from ..fields import canonical_uuid
from ..schemas import ConsultationOut, PageArgs, TicketList
from ..services import ServiceError
from ..services.consultations import find_ticket, list_tickets, sync_view
from . import Blueprint, documents_errors, examples

blp = Blueprint("tickets", __name__, url_prefix="/api/tickets", description="Consultations as tickets")
blp.before_request(auth.authenticate)
security.limit_api(blp)


@blp.route("/<cons_id>")
class Ticket(MethodView):
    @blp.response(200, ConsultationOut, example=examples.CONSULTATION)
    @documents_errors(blp, 401, 404, 429)
    def get(self, cons_id):
        """Get a consultation by cons_id (Chatwoot) or consultation_id"""
        consultation = find_ticket(cons_id) if len(cons_id) <= 64 else None
        if consultation is None:
            abort(404, message="Ticket not found")
        consultation.sync = sync_view(consultation)
        return consultation


@blp.route("/clients/<client_id>/tickets")
class ClientTickets(MethodView):
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, TicketList, example=examples.TICKETS)
    @documents_errors(blp, 401, 404, 422, 429)
    def get(self, args, client_id):
        """List a client's consultations, newest first"""
        if canonical_uuid(client_id) is None:
            abort(404, message="Client not found")
        try:
            tickets, total = list_tickets(canonical_uuid(client_id), args["skip"], args["limit"])
        except ServiceError as err:
            abort(err.status, message=err.detail)
        return {"tickets": tickets, "total": total}
