"""Chatwoot Application API client: one consultation becomes exactly one conversation.

Plain values in, plain values out, one error type (``SyncError``) and no retries: the outbox owns retrying,
so everything here is written to be safe to run again after any failure:

- The contact is keyed by ``identifier`` = our client_id. Creating it twice is impossible (Chatwoot answers
  422 "... has already been taken"), so on 422 we look it up with the exact ``contacts/filter`` (never
  ``search``, which matches substrings) by identifier, then email, then phone: a person the consultants
  created by hand, or who came through another channel, is reused rather than duplicated.
- The conversation hangs off a contact-inbox whose ``source_id`` is ``clobus-<contact id>``: deterministic,
  so a retry finds the same contact-inbox (``contact_inboxes`` is idempotent for the same contact, inbox and
  source_id), and unique per inbox because contact ids are. Without a source_id Chatwoot would make a new
  contact-inbox on every call.
- Chatwoot has no idempotency key, so after an uncertain attempt (timeout, dropped connection, 5xx on a
  write) the caller passes ``look_first=True`` and we search the contact's recent conversations for our
  ``consultation_id`` custom attribute before creating one.

The token travels only in the ``Api-Access-Token`` header: Rails reads it exactly like ``api_access_token``,
but unlike the underscore spelling it survives proxies (nginx by default, werkzeug) that drop such headers.
"""
from urllib.parse import quote

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from clobus_consult.sync.errors import SyncError

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection could not be opened, so a write cannot have reached Chatwoot."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(exc, requests.ConnectTimeout) or isinstance(reason, (NewConnectionError,
                                                                         ConnectTimeoutError))


def _error_text(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:300]
    if isinstance(body, dict):
        for key in ("message", "error", "errors"):
            if body.get(key):
                value = body[key]
                return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    return str(body)[:300]


class ChatwootClient:
    def __init__(self, base_url: str, api_token: str, account_id: int | str, inbox_id: int | str, *,
                 timeout=(3.05, 10.0)):
        self.base_url = f"{base_url.rstrip('/')}/api/v1/accounts/{account_id}"
        self.inbox_id = int(inbox_id)
        self.timeout = timeout
        self._token = api_token
        self.session = requests.Session()
        self.session.headers.update({"Api-Access-Token": api_token, "Accept": "application/json"})

    def close(self) -> None:
        self.session.close()

    # -- public -------------------------------------------------------------------------------------------
    def push_consultation(self, c: dict, *, contact_id: int | None = None, source_id: str | None = None,
                          look_first: bool = True) -> dict:
        """Make sure exactly one conversation exists for c["consultation_id"]; return
        {"cons_id": str(display id), "contact_id": int, "source_id": str}."""
        cached = contact_id is not None and bool(source_id)
        if not cached:
            contact_id = self._resolve_contact(c)
            source_id = self._ensure_contact_inbox(contact_id)
        try:
            conv = self._find_or_create_conversation(c, contact_id, source_id, look_first)
        except SyncError as exc:
            # A cached contact may since have been deleted or merged away in Chatwoot: resolve it afresh once.
            stale = exc.status == 404 or (exc.status == 422 and "source_id" in exc.message)
            if not (cached and stale):
                raise
            contact_id = self._resolve_contact(c)
            source_id = self._ensure_contact_inbox(contact_id)
            conv = self._find_or_create_conversation(c, contact_id, source_id, look_first)
        return {"cons_id": str(conv["id"]), "contact_id": int(contact_id), "source_id": str(source_id)}

    def merge_custom_attributes(self, cons_id: str, attrs: dict) -> dict:
        """Chatwoot's endpoint replaces the whole hash, so read, merge, write. A consultant editing the same
        conversation in between can still lose an edit; the API offers nothing better."""
        current = self.get_conversation(cons_id).get("custom_attributes") or {}
        merged = {**current, **attrs}
        body = self._request("POST", f"/conversations/{quote(str(cons_id), safe='')}/custom_attributes",
                             {"custom_attributes": merged})
        return body.get("custom_attributes", merged)

    def get_conversation(self, cons_id: str) -> dict:
        return self._request("GET", f"/conversations/{quote(str(cons_id), safe='')}")

    # -- steps --------------------------------------------------------------------------------------------
    def _resolve_contact(self, c: dict) -> int:
        client_id, email, phone = c["client_id"], c.get("email"), c.get("phone_number")
        body = {"name": email or phone or f"Clobus client {client_id[:8]}", "identifier": client_id,
                "email": email, "phone_number": phone}
        if c.get("org_inn"):
            body["custom_attributes"] = {"org_inn": c["org_inn"]}
        try:
            created = self._request("POST", "/contacts", {k: v for k, v in body.items() if v is not None})
            return int(created["payload"]["contact"]["id"])
        except SyncError as exc:
            if exc.status != 422 or "already been taken" not in exc.message:
                raise
        for key, value in (("identifier", client_id), ("email", email), ("phone_number", phone)):
            if value:
                found = self._request("POST", "/contacts/filter", write=False, body={"payload": [
                    {"attribute_key": key, "filter_operator": "equal_to", "values": [value],
                     "query_operator": None}]})["payload"]
                if found:
                    return int(found[0]["id"])
        # Taken a moment ago yet not found: most likely a concurrent change in Chatwoot; try again later.
        raise SyncError(f"Chatwoot contact for client {client_id} is taken but cannot be found")

    def _ensure_contact_inbox(self, contact_id: int) -> str:
        body = self._request("POST", f"/contacts/{contact_id}/contact_inboxes",
                             {"inbox_id": self.inbox_id, "source_id": f"clobus-{contact_id}"})
        return str(body["source_id"])

    def _find_or_create_conversation(self, c: dict, contact_id: int, source_id: str,
                                     look_first: bool) -> dict:
        if look_first:
            for conv in self._request("GET", f"/contacts/{contact_id}/conversations")["payload"]:
                if (conv.get("custom_attributes") or {}).get("consultation_id") == c["consultation_id"]:
                    return conv
        attrs = {"consultation_id": c["consultation_id"], "client_id": c["client_id"], "lang": c.get("lang"),
                 "topic": c.get("topic"), "source": c.get("source"), "org_inn": c.get("org_inn")}
        if c.get("scheduled_at") is not None:
            attrs["scheduled_date"] = c["scheduled_at"].isoformat()
        body = {"source_id": source_id, "inbox_id": self.inbox_id, "contact_id": contact_id, "status": "open",
                "custom_attributes": {k: v for k, v in attrs.items() if v is not None}}
        content = "\n\n".join(part for part in (f"Тема: {c['topic']}" if c.get("topic") else None,
                                                c.get("comment")) if part)
        if content:
            body["message"] = {"content": content, "message_type": "incoming"}
        return self._request("POST", "/conversations", body)

    # -- transport ----------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict | None = None, *,
                 write: bool | None = None) -> dict:
        write = method in WRITES if write is None else write
        what = f"Chatwoot {method} {path}"
        try:
            resp = self.session.request(method, self.base_url + path, json=body, timeout=self.timeout)
        except requests.ConnectionError as exc:  # before Timeout: ConnectTimeout is both
            uncertain = write and not _never_sent(exc)
            raise SyncError(self._scrub(f"{what}: connection failed: {exc}"), uncertain=uncertain) from None
        except requests.Timeout:
            raise SyncError(f"{what}: timed out after {self.timeout}", uncertain=write) from None
        except requests.RequestException as exc:
            raise SyncError(self._scrub(f"{what}: {exc}"), uncertain=write) from None
        status = resp.status_code
        if status in (408, 429) or status >= 500:
            raise SyncError(self._scrub(f"{what} -> {status}: {_error_text(resp)}"), status=status,
                            uncertain=write and status >= 500)
        if status >= 400:
            raise SyncError(self._scrub(f"{what} -> {status}: {_error_text(resp)}"), status=status,
                            permanent=True)
        try:
            return resp.json()
        except ValueError:
            # A success we cannot read: if it was a write it probably happened.
            raise SyncError(f"{what} -> {status}: response is not JSON", status=status,
                            uncertain=write) from None

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text
