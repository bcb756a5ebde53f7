"""HTTP resources: one module each. Views validate (schemas), call a service, and shape the answer."""
import io
import json

from flask import current_app, request
from flask_smorest import Blueprint as BaseBlueprint
from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser


def _bad_text(value) -> bool:
    """True if a decoded JSON value holds a string that cannot be stored: NUL or a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class Parser(FlaskParser):
    """webargs' parser, hardened: hostile JSON is a 4xx, never a 500."""

    def _raw_load_json(self, req):
        if not core.is_json(req.mimetype):
            return core.missing
        try:
            payload = core.parse_json(req.get_data(cache=True))
        except RecursionError:
            abort(400, message="JSON body is nested too deeply")
        except ValueError:  # JSONDecodeError, UnicodeDecodeError, and ints past Python's 4300-digit limit
            abort(400, message="Malformed JSON body")
        if _bad_text(payload):
            abort(422, message="Validation error",
                  errors={"json": {"_schema": ["Strings must be valid UTF-8 without NUL characters."]}})
        return payload

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        abort(400, message="Malformed JSON body")


class Blueprint(BaseBlueprint):
    ARGUMENTS_PARSER = Parser()


def require_json_body() -> None:
    """415 for a write whose body is not JSON, 413 for one over the limit (before any parsing or auth work)."""
    if request.routing_exception is not None or request.method not in ("POST", "PUT", "PATCH"):
        return  # unknown routes and methods get their own 404/405
    if request.mimetype != "application/json":
        abort(415, message="Content-Type must be application/json")
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        # A chunked body has no Content-Length, and werkzeug would silently cut it at MAX_CONTENT_LENGTH:
        # read it here, refuse it whole if it is too long, and hand on the rest as a sized body.
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        data = request.environ["wsgi.input"].read(limit + 1)
        if len(data) > limit:
            abort(413, message="Request body too large")
        request.environ["wsgi.input"] = io.BytesIO(data)
        request.environ["CONTENT_LENGTH"] = str(len(data))
        request.environ.pop("wsgi.input_terminated")


def json_body() -> dict:
    """The parsed body as the caller sent it (for idempotency hashing)."""
    return json.loads(request.get_data(cache=True))


def register(api) -> None:
    from . import clients, consultations, health, tickets, webhooks

    for module in (consultations, clients, tickets, health, webhooks):
        api.register_blueprint(module.blp)


def documents_errors(blp: BaseBlueprint, *codes: int):
    """Document the error answers a view can give (all in the one ``{"detail": ...}`` shape)."""
    import http

    def decorator(view):
        for code in codes:
            view = blp.alt_response(code, response=http.HTTPStatus(code).name)(view)
        return view

    return decorator
