"""A local Chatwoot: the slice of the Application API this service uses, built to shared/spec/chatwoot.md.

It copies real Chatwoot where real Chatwoot is awkward, because those are the behaviours the client must
survive: success is 200 (never 201), errors use Chatwoot's own bodies (401 in three shapes, 404, 422 as
``{"message", "attributes"}`` or ``{"error"}``), a conversation created with ``inbox_id`` + ``contact_id``
and no ``source_id`` gets a brand-new contact-inbox every time, and ``custom_attributes`` replaces the hash.
Status changes are pushed to ``webhook_url`` as separate, unordered, unretried deliveries, signed like
Chatwoot >= 4.12 when a secret is set. One account and one API inbox; state lives in memory behind a lock
(the server is threaded). Beside the fault controls of ``faults.py``, ``/__emulator__/state``, ``/reset``
and ``/conversations/<id>/status`` let tests look inside and act as a consultant.

Run: ``python -m clobus_consult.emulators.chatwoot --port 3000 --token X --account 1 --inbox 1``.
"""
import argparse
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import uuid
from urllib.parse import urlencode

import requests
from flask import Blueprint, Flask, g, jsonify, request
from werkzeug.serving import WSGIRequestHandler, run_simple

from clobus_consult.emulators.faults import Faults

log = logging.getLogger(__name__)

STATUSES = ("open", "resolved", "pending", "snoozed")
MESSAGE_TYPES = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}
E164 = re.compile(r"\+[1-9]\d{1,14}")
HUMAN = {"name": "Name", "email": "Email", "identifier": "Identifier", "phone_number": "Phone number"}
NOT_FOUND = {"error": "Resource could not be found"}
AGENT = {"id": 1, "name": "Emulator Agent", "available_name": "Emulator Agent", "type": "user"}


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(status)
        self.status, self.body = status, body


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND)


def invalid(errors: list[tuple[str, str]]) -> ApiError:
    """Rails' RecordInvalid rendering: full messages joined, attribute names listed."""
    attrs = list(dict.fromkeys(attr for attr, _ in errors))
    return ApiError(422, {"message": ", ".join(msg for _, msg in errors), "attributes": attrs})


def now() -> int:
    return int(time.time())


class UnderscoreHeadersHandler(WSGIRequestHandler):
    """werkzeug drops headers with underscores (as nginx does by default); Chatwoot's Puma keeps
    ``api_access_token``, so the standalone emulator does too. The dashed spelling still wins."""

    def make_environ(self):
        environ = super().make_environ()
        for key, value in self.headers.items():
            if "_" in key:
                environ.setdefault("HTTP_" + key.upper().replace("-", "_"), value)
        return environ


class Store:
    def __init__(self, account_id: int, inbox_id: int):
        self.lock = threading.Lock()
        self.account_id, self.inbox_id = account_id, inbox_id
        self.reset()

    def reset(self) -> None:
        self.contacts: dict[int, dict] = {}
        self.contact_inboxes: list[dict] = []
        self.conversations: dict[int, dict] = {}
        self.seq = {"contact": 0, "contact_inbox": 0, "conversation": 0, "message": 0}

    def next_id(self, kind: str) -> int:
        self.seq[kind] += 1
        return self.seq[kind]

    # -- lookups -------------------------------------------------------------------------------------
    def contact(self, contact_id) -> dict:
        try:
            return self.contacts[int(contact_id)]
        except (KeyError, TypeError, ValueError):
            raise not_found() from None

    def conversation(self, display_id) -> dict:
        try:
            return self.conversations[int(display_id)]
        except (KeyError, TypeError, ValueError):
            raise not_found() from None

    def check_inbox(self, inbox_id) -> None:
        if str(inbox_id) != str(self.inbox_id):
            raise not_found()

    # -- serialisation (Chatwoot's jbuilder shapes) -------------------------------------------------------
    def inbox_json(self) -> dict:
        return {"id": self.inbox_id, "name": "Emulated API inbox", "channel_type": "Channel::Api",
                "channel_id": self.inbox_id, "avatar_url": "", "provider": None}

    def contact_inbox_json(self, ci: dict) -> dict:
        return {"source_id": ci["source_id"], "inbox": self.inbox_json(), "hmac_verified": False}

    def contact_json(self, c: dict, with_inboxes: bool = False) -> dict:
        out = {key: c[key] for key in ("id", "name", "email", "phone_number", "identifier", "blocked")}
        out.update(thumbnail="", availability_status="offline",
                   custom_attributes=dict(c["custom_attributes"]),
                   additional_attributes=dict(c["additional_attributes"]), created_at=c["created_at"])
        if c["last_activity_at"] is not None:
            out["last_activity_at"] = c["last_activity_at"]
        if with_inboxes:
            out["contact_inboxes"] = [self.contact_inbox_json(ci) for ci in self.contact_inboxes
                                      if ci["contact_id"] == c["id"]]
        return out

    def message_json(self, conv: dict, m: dict) -> dict:
        if m["message_type"] == "incoming":
            sender = dict(self.contact_json(self.contacts[conv["contact_id"]]), type="contact")
        else:
            sender = dict(AGENT)
        return {"id": m["id"], "content": m["content"], "account_id": self.account_id,
                "inbox_id": conv["inbox_id"], "conversation_id": conv["id"],
                "message_type": MESSAGE_TYPES[m["message_type"]], "content_type": "text", "status": "sent",
                "content_attributes": {}, "created_at": m["created_at"], "private": m["private"],
                "source_id": None, "sender_type": "Contact" if sender["type"] == "contact" else "User",
                "sender_id": sender["id"], "sender": sender}

    def conversation_json(self, conv: dict, all_messages: bool = False) -> dict:
        msgs = conv["messages"] if all_messages else conv["messages"][-1:]
        ci = next(ci for ci in self.contact_inboxes if ci["id"] == conv["contact_inbox_id"])
        return {
            "id": conv["id"], "account_id": self.account_id, "inbox_id": conv["inbox_id"],
            "uuid": conv["uuid"],
            "status": conv["status"], "custom_attributes": dict(conv["custom_attributes"]),
            "additional_attributes": dict(conv["additional_attributes"]), "labels": [], "priority": None,
            "messages": [self.message_json(conv, m) for m in msgs],
            "meta": {"sender": self.contact_json(self.contacts[conv["contact_id"]]), "assignee": None,
                     "team": None, "channel": "Channel::Api", "hmac_verified": False},
            "contact_inbox": {"id": ci["id"], "contact_id": ci["contact_id"], "inbox_id": ci["inbox_id"],
                              "source_id": ci["source_id"]},
            "can_reply": True, "muted": False, "snoozed_until": None, "created_at": conv["created_at"],
            "timestamp": conv["last_activity_at"], "last_activity_at": conv["last_activity_at"],
            "agent_last_seen_at": 0, "contact_last_seen_at": 0,
            "unread_count": sum(m["message_type"] == "incoming" for m in conv["messages"]),
        }

    # -- contacts --------------------------------------------------------------------------------------
    def contact_errors(self, fields: dict, self_id: int | None = None) -> list[tuple[str, str]]:
        errors = []
        for attr in ("name", "email", "identifier", "phone_number"):
            value = fields.get(attr)
            if value is not None and len(value) > 255:
                errors.append((attr, f"{HUMAN[attr]} is too long (maximum is 255 characters)"))
        phone = fields.get("phone_number")
        if phone is not None and not E164.fullmatch(phone):
            errors.append(("phone_number", "Phone number should be in e164 format"))
        for attr in ("email", "identifier", "phone_number"):
            value = fields.get(attr)
            if value is None:
                continue
            fold = value.lower() if attr == "email" else value  # identifier is unique case-sensitively
            for other in self.contacts.values():
                theirs = other[attr].lower() if attr == "email" and other[attr] else other[attr]
                if other["id"] != self_id and theirs == fold:
                    errors.append((attr, f"{HUMAN[attr]} has already been taken"))
                    break
        return errors

    @staticmethod
    def contact_fields(body: dict) -> dict:
        """Normalise like Contact#prepare_contact_attributes: blanks become null, email lower-cased."""
        out = {}
        for attr in ("name", "email", "identifier", "phone_number"):
            if attr in body:
                value = body[attr]
                value = str(value).strip() if value is not None else None
                out[attr] = value or None
        if out.get("email"):
            out["email"] = out["email"].lower()
        for attr in ("custom_attributes", "additional_attributes"):
            if isinstance(body.get(attr), dict):
                out[attr] = dict(body[attr])
        return out

    def contact_inbox_for(self, contact: dict, source_id: str | None) -> dict:
        """Like ContactInboxBuilder: reuse the same contact+inbox+source_id; refuse another contact's."""
        source_id = str(source_id) if source_id not in (None, "") else str(uuid.uuid4())
        for ci in self.contact_inboxes:
            if ci["inbox_id"] == self.inbox_id and ci["source_id"] == source_id:
                if ci["contact_id"] == contact["id"]:
                    return ci
                raise ApiError(422, {"error": "source_id should be unique"})
        ci = {"id": self.next_id("contact_inbox"), "contact_id": contact["id"], "inbox_id": self.inbox_id,
              "source_id": source_id, "created_at": now()}
        self.contact_inboxes.append(ci)
        return ci

    def matches(self, contact: dict, cond: dict) -> bool:
        key, op = cond.get("attribute_key"), cond.get("filter_operator")
        if key not in ("identifier", "email", "phone_number", "name"):
            raise ApiError(422, {"error": f"Invalid attribute key - [{key}]"})
        if op not in ("equal_to", "not_equal_to", "contains", "does_not_contain"):
            raise ApiError(422, {"error": f"Invalid operator. The allowed operators for {key} are "
                                          "[equal_to,not_equal_to,contains,does_not_contain]."})
        fold = (lambda v: v.lower()) if key in ("identifier", "email", "name") else (lambda v: v)
        have = fold(contact[key]) if contact[key] else None
        values = [fold(str(v)) for v in (cond.get("values") or [])]
        if op in ("equal_to", "not_equal_to"):
            hit = have is not None and have in values
        else:
            hit = have is not None and any(v in have for v in values)
        return hit if op in ("equal_to", "contains") else not hit

    # -- conversations ----------------------------------------------------------------------------------
    @staticmethod
    def check_custom_attributes(attrs) -> dict:
        if attrs is None:
            return {}
        if not isinstance(attrs, dict):
            raise invalid([("custom_attributes", "Custom attributes must be a hash")])
        errors = [("custom_attributes", f"Custom attributes {key} is too long (maximum is 1500 characters)")
                  for key, value in attrs.items() if isinstance(value, str) and len(value) > 1500]
        if errors:
            raise invalid(errors)
        return dict(attrs)

    def add_message(self, conv: dict, body: dict) -> dict:
        message_type = body.get("message_type") or "outgoing"
        if message_type not in MESSAGE_TYPES:
            raise ApiError(422, {"error": f"'{message_type}' is not a valid message_type"})
        content = body.get("content")
        m = {"id": self.next_id("message"), "content": None if content is None else str(content),
             "message_type": message_type, "private": bool(body.get("private", False)), "created_at": now()}
        conv["messages"].append(m)
        conv["last_activity_at"] = m["created_at"]
        return m

    def set_status(self, conv: dict, status) -> dict | None:
        """Returns the changed_attributes entry when the status really changed."""
        if status is None:
            status = "resolved" if conv["status"] == "open" else "open"
        if status not in STATUSES:
            raise ApiError(422, {"error": f"'{status}' is not a valid status"})
        previous, conv["status"] = conv["status"], status
        if previous == status:
            return None
        # Chatwoot records a status change as an activity message, which moves last_activity_at (and the
        # webhook payload's ``timestamp``) forward: receivers can order deliveries by it.
        conv["last_activity_at"] = now()
        return {"status": {"previous_value": previous, "current_value": status}}


def deliver(url: str, secret: str | None, token: str | None, payload: dict) -> None:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Chatwoot emulator"}
    if secret:
        ts = str(now())
        digest = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers.update({"X-Chatwoot-Delivery": str(uuid.uuid4()), "X-Chatwoot-Timestamp": ts,
                        "X-Chatwoot-Signature": f"sha256={digest}"})
    if token:
        url += ("&" if "?" in url else "?") + urlencode({"token": token})
    try:
        requests.post(url, data=body, headers=headers, timeout=5)
    except requests.RequestException as exc:  # Chatwoot does not retry account webhooks either
        log.warning("webhook %s failed: %s", payload.get("event"), exc)


def create_app(api_token: str = "test-token", account_id: int = 1, inbox_id: int = 1,
               webhook_url: str | None = None, webhook_secret: str | None = None,
               webhook_token: str | None = None) -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False
    store = Store(int(account_id), int(inbox_id))
    faults = Faults()
    faults.install(app)
    app.extensions["chatwoot_emulator"] = store

    def fire(conv: dict, events: list[str], changed: dict | None = None) -> None:
        """Each event is its own delivery on its own thread: order is not guaranteed, as in Chatwoot."""
        if not webhook_url:
            return
        for event in events:
            payload = dict(store.conversation_json(conv), event=event)
            if event != "conversation_created":
                payload["changed_attributes"] = [changed] if changed else None
            threading.Thread(target=deliver, args=(webhook_url, webhook_secret, webhook_token, payload),
                             daemon=False).start()  # joined at exit: no daemon writing to stderr then

    def change_status(display_id, status) -> dict:
        with store.lock:
            conv = store.conversation(display_id)
            changed = store.set_status(conv, status)
            if changed:
                fire(conv, ["conversation_status_changed", "conversation_updated"], changed)
            return conv

    def body() -> dict:
        data = request.get_json(force=True, silent=True)
        return data if isinstance(data, dict) else {}

    api = Blueprint("chatwoot_api", __name__, url_prefix="/api/v1/accounts/<int:account>")

    @api.url_value_preprocessor
    def pull_account(_endpoint, values):
        g.account = values.pop("account")

    @api.before_request
    def authenticate():
        token = request.headers.get("api_access_token")  # matches the dashed spelling too
        if not token:
            return jsonify({"errors": ["You need to sign in or sign up before continuing."]}), 401
        if not hmac.compare_digest(token.encode(), api_token.encode()):
            return jsonify({"error": "Invalid Access Token"}), 401
        if g.account != store.account_id:
            return jsonify({"error": "You are not authorized to access this account"}), 401
        return None

    @api.post("/contacts")
    def create_contact():
        data = body()
        fields = store.contact_fields(data)
        with store.lock:
            if data.get("inbox_id") not in (None, ""):
                store.check_inbox(data["inbox_id"])
            errors = store.contact_errors(fields)
            if errors:
                raise invalid(errors)
            wanted = data.get("source_id")
            if data.get("inbox_id") not in (None, "") and wanted not in (None, "") and any(
                    ci["source_id"] == str(wanted) for ci in store.contact_inboxes):
                raise ApiError(422, {"error": "source_id should be unique"})  # before anything is saved
            contact = {"id": store.next_id("contact"), "name": None, "email": None, "phone_number": None,
                       "identifier": None, "blocked": False, "custom_attributes": {},
                       "additional_attributes": {}, "created_at": now(), "last_activity_at": None}
            contact.update(fields)
            contact["name"] = contact["name"] or ""
            store.contacts[contact["id"]] = contact
            ci = None
            if data.get("inbox_id") not in (None, ""):
                ci = store.contact_inbox_for(contact, data.get("source_id"))
            out = {"contact": store.contact_json(contact, with_inboxes=True),
                   "contact_inbox": {"inbox": store.inbox_json() if ci else None,
                                     "source_id": ci["source_id"] if ci else None}}
        faults.after_commit()
        return jsonify({"payload": out})

    @api.get("/contacts/<int:contact_id>")
    def show_contact(contact_id):
        with store.lock:
            return jsonify({"payload": store.contact_json(store.contact(contact_id), with_inboxes=True)})

    @api.patch("/contacts/<int:contact_id>")
    @api.put("/contacts/<int:contact_id>")
    def update_contact(contact_id):
        fields = store.contact_fields(body())
        with store.lock:
            contact = store.contact(contact_id)
            errors = store.contact_errors(fields, self_id=contact["id"])
            if errors:
                raise invalid(errors)
            for attr in ("custom_attributes", "additional_attributes"):  # shallow merge, as Chatwoot does
                if attr in fields:
                    fields[attr] = {**contact[attr], **fields[attr]}
            contact.update(fields)
            contact["name"] = contact["name"] or ""
            out = store.contact_json(contact, with_inboxes=True)
        faults.after_commit()
        return jsonify({"payload": out})

    @api.post("/contacts/filter")
    def filter_contacts():
        conditions = body().get("payload")
        if not isinstance(conditions, list) or not conditions:
            raise ApiError(422, {"error": "Invalid payload"})
        page = max(request.args.get("page", 1, type=int) or 1, 1)
        with store.lock:
            found = []
            for contact in store.contacts.values():
                if not (contact["email"] or contact["phone_number"] or contact["identifier"]):
                    continue
                result, joiner = None, None
                for cond in conditions:
                    hit = store.matches(contact, cond)
                    if result is None:
                        result = hit
                    else:
                        result = (result or hit) if joiner == "or" else (result and hit)
                    joiner = str(cond.get("query_operator") or "and").lower()
                if result:
                    found.append(contact)
            payload = [store.contact_json(c, with_inboxes=True) for c in found[(page - 1) * 15:page * 15]]
        return jsonify({"meta": {"count": len(found), "current_page": page}, "payload": payload})

    @api.post("/contacts/<int:contact_id>/contact_inboxes")
    def create_contact_inbox(contact_id):
        data = body()
        with store.lock:
            contact = store.contact(contact_id)
            store.check_inbox(data.get("inbox_id"))
            ci = store.contact_inbox_for(contact, data.get("source_id"))
            out = store.contact_inbox_json(ci)
        faults.after_commit()
        return jsonify(out)

    @api.get("/contacts/<int:contact_id>/conversations")
    def contact_conversations(contact_id):
        with store.lock:
            store.contact(contact_id)
            convs = [c for c in store.conversations.values() if c["contact_id"] == contact_id]
            convs.sort(key=lambda c: (c["last_activity_at"], c["id"]), reverse=True)
            return jsonify({"payload": [store.conversation_json(c) for c in convs[:20]]})

    @api.post("/conversations")
    def create_conversation():
        data = body()
        with store.lock:
            if data.get("contact_id") not in (None, "") and data.get("inbox_id") not in (None, ""):
                contact = store.contact(data["contact_id"])
                store.check_inbox(data["inbox_id"])
                ci = store.contact_inbox_for(contact, data.get("source_id"))
            else:  # the legacy lookup by source_id alone
                ci = next((ci for ci in store.contact_inboxes if data.get("source_id") not in (None, "")
                           and ci["source_id"] == str(data["source_id"])), None)
                if ci is None:
                    raise not_found()
            status = data.get("status") or "open"
            if status not in STATUSES:
                raise ApiError(422, {"error": f"'{status}' is not a valid status"})
            custom = store.check_custom_attributes(data.get("custom_attributes"))
            message = data.get("message") if isinstance(data.get("message"), dict) else None
            if message and (message.get("message_type") or "outgoing") not in MESSAGE_TYPES:
                raise ApiError(422, {"error": f"'{message['message_type']}' is not a valid message_type"})
            additional = data.get("additional_attributes")
            ts = now()
            conv = {"id": store.next_id("conversation"), "uuid": str(uuid.uuid4()),
                    "inbox_id": ci["inbox_id"],
                    "contact_id": ci["contact_id"], "contact_inbox_id": ci["id"], "status": status,
                    "custom_attributes": custom,
                    "additional_attributes": dict(additional) if isinstance(additional, dict) else {},
                    "messages": [], "created_at": ts, "last_activity_at": ts}
            store.conversations[conv["id"]] = conv
            if message:
                store.add_message(conv, message)
            store.contacts[conv["contact_id"]]["last_activity_at"] = ts
            out = store.conversation_json(conv)
            fire(conv, ["conversation_created"])
        faults.after_commit()
        return jsonify(out)

    @api.get("/conversations/<int:display_id>")
    def show_conversation(display_id):
        with store.lock:
            return jsonify(store.conversation_json(store.conversation(display_id)))

    @api.post("/conversations/<int:display_id>/custom_attributes")
    def set_custom_attributes(display_id):
        attrs = body().get("custom_attributes")
        with store.lock:
            conv = store.conversation(display_id)
            conv["custom_attributes"] = store.check_custom_attributes(attrs)  # replaces, never merges
            out = {"custom_attributes": dict(conv["custom_attributes"])}
        faults.after_commit()
        return jsonify(out)

    @api.post("/conversations/<int:display_id>/toggle_status")
    def toggle_status(display_id):
        conv = change_status(display_id, body().get("status"))
        faults.after_commit()
        return jsonify({"meta": {}, "payload": {"success": True, "conversation_id": conv["id"],
                                                "current_status": conv["status"], "snoozed_until": None}})

    @api.post("/conversations/<int:display_id>/messages")
    def create_message(display_id):
        data = body()
        with store.lock:
            conv = store.conversation(display_id)
            out = store.message_json(conv, store.add_message(conv, data))
        faults.after_commit()
        return jsonify(out)

    control = Blueprint("chatwoot_emulator", __name__, url_prefix="/__emulator__")

    @control.get("/state")
    def state():
        with store.lock:
            return jsonify({
                "contacts": [store.contact_json(c, with_inboxes=True) for c in store.contacts.values()],
                "contact_inboxes": [dict(ci) for ci in store.contact_inboxes],
                "conversations": [store.conversation_json(c, all_messages=True)
                                  for c in store.conversations.values()],
            })

    @control.post("/reset")
    def reset():
        with store.lock:
            store.reset()
        faults.set("none")
        with faults.lock:
            faults.stats.clear()
        return jsonify({"ok": True})

    @control.post("/conversations/<int:display_id>/status")
    def consultant_sets_status(display_id):
        conv = change_status(display_id, body().get("status"))
        return jsonify({"id": conv["id"], "status": conv["status"]})

    app.register_blueprint(api)
    app.register_blueprint(control)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(exc.body), exc.status

    @app.errorhandler(404)
    def no_route(_exc):
        return jsonify(NOT_FOUND), 404

    @app.errorhandler(405)
    def no_method(_exc):
        return jsonify(NOT_FOUND), 404

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Chatwoot emulator (Application API subset).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--token", default="test-token", help="the api_access_token it accepts")
    parser.add_argument("--account", type=int, default=1)
    parser.add_argument("--inbox", type=int, default=1)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret", help="sign deliveries like Chatwoot >= 4.12")
    parser.add_argument("--webhook-token", help="append ?token= to the webhook URL (unsigned old Chatwoot)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    app = create_app(api_token=args.token, account_id=args.account, inbox_id=args.inbox,
                     webhook_url=args.webhook_url, webhook_secret=args.webhook_secret,
                     webhook_token=args.webhook_token)
    run_simple(args.host, args.port, app, threaded=True, request_handler=UnderscoreHeadersHandler)


if __name__ == "__main__":
    main()
