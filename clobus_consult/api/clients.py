"""Clients: create-or-update, and look-ups by id or by the website's hash."""
from flask.views import MethodView
from flask_smorest import abort

from .. import auth, security
from ..db import write_transaction
from ..schemas import ClientIn, ClientOut
from ..services import ServiceError, retry_on_conflict
from ..services.clients import find_client, find_client_by_hash, resolve_client
from . import Blueprint, documents_errors, examples

blp = Blueprint("clients", __name__, url_prefix="/api/clients", description="Clients of clobus.uz")
blp.before_request(auth.authenticate)
security.limit_api(blp)


@blp.route("")
class Clients(MethodView):
    @blp.arguments(ClientIn(), example={
        "email": "user@example.com", "phone_number": "+998901234567", "org_inn": "123456789",
        "country": "UZ", "city": "Tashkent",
    })
    @blp.response(200, ClientOut, example=examples.CLIENT)
    @documents_errors(blp, 401, 404, 409, 413, 415, 422, 429)
    def post(self, data):
        """Create a client, or update the one matched by client_id, client_id_hash or email+phone+INN"""

        def attempt():
            with write_transaction():
                return resolve_client(data)[0]

        try:
            return retry_on_conflict(attempt)
        except ServiceError as err:
            abort(err.status, message=err.detail, errors=err.errors)


@blp.route("/<client_id>")
class ClientById(MethodView):
    @blp.response(200, ClientOut, example=examples.CLIENT)
    @documents_errors(blp, 401, 404, 429)
    def get(self, client_id):
        """Get a client by its UUID"""
        client = find_client(client_id)
        if client is None:
            abort(404, message="Client not found")
        return client


@blp.route("/by-hash/<path:client_hash>")
class ClientByHash(MethodView):
    @blp.response(200, ClientOut, example=examples.CLIENT)
    @documents_errors(blp, 401, 404, 429)
    def get(self, client_hash):
        """Get a client by the website's client_id_hash"""
        client = find_client_by_hash(client_hash)
        if client is None:
            abort(404, message="Client not found")
        return client
