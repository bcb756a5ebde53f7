"""One error shape for every failure: ``{"detail": "<human-readable string>"}``.

Validation failures add ``errors`` keyed by location (json, query, path, headers) then field path.
A 500 never carries more than "Internal server error": the traceback goes to the log, not to the caller.
"""
import logging

from flask import Flask, jsonify, request
from flask_smorest import Api as BaseApi
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

DETAILS = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Content-Type must be application/json",
    422: "Validation error",
    429: "Too many requests",
    500: "Internal server error",
}


class ErrorSchema(Schema):
    detail = fields.String(required=True, metadata={"example": "Client not found"})
    errors = fields.Dict(metadata={"description": "Validation messages by location and field"})


def error_response(status: int, detail: str | None = None, errors=None, headers=None):
    body = {"detail": detail or DETAILS.get(status, "Error")}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class Api(BaseApi):
    """flask-smorest's Api, answering every HTTP error in the service's own shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        status = error.code or 500
        headers = dict(data.get("headers") or {})
        headers.update((k, v) for k, v in error.get_headers() if k == "Allow")  # 405 must say what is allowed
        if status == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        if status == 500:
            return error_response(500)  # whatever it was, the caller learns nothing more
        errors = data.get("errors") or data.get("messages")
        detail = data.get("message")
        if status == 400 and detail is None and error.description and "JSON" in error.description:
            detail = "Malformed JSON body"
        if status == 422 and errors:
            detail = "Validation error"
        if detail is None:
            detail = DETAILS.get(status, error.name)
        if error.response is not None and status == 429:
            headers.update({k: v for k, v in error.response.headers.items() if k == "Retry-After"})
        return error_response(status, detail, errors, headers)


def register_error_handlers(app: Flask, api: Api) -> None:
    @app.errorhandler(Exception)
    def _unhandled(exc):
        if isinstance(exc, HTTPException):
            return api.handle_http_exception(exc)
        log.exception("Unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return error_response(500)
