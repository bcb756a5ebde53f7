"""HTTP resources: one module each. Views validate (schemas), call a service, and shape the answer."""
import json

from flask import Flask, request
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
        if _bad_text(payload):
            abort(422, message="Validation error",
                  errors={"json": {"_schema": ["Strings must be valid UTF-8 without NUL characters."]}})
        return payload

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        abort(400, message="Malformed JSON body")


class Blueprint(BaseBlueprint):
    ARGUMENTS_PARSER = Parser()


def require_json_body() -> None:
    """415 for a write whose body is not JSON (before any parsing or auth work)."""
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype != "application/json":
        abort(415, message="Content-Type must be application/json")


def json_body() -> dict:
    """The parsed body as the caller sent it (for idempotency hashing)."""
    return json.loads(request.get_data(cache=True))


def register(app: Flask, api) -> None:
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
