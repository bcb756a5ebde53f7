"""The two emulators as real HTTP servers on 127.0.0.1, and small handles the sync tests drive them with."""
from contextlib import contextmanager

import requests

from clobus_consult.emulators import chatwoot, onec
from clobus_consult.emulators.server import ServerThread

CHATWOOT_TOKEN = "cw-test-token"
ONEC_USER, ONEC_PASSWORD = "Администратор", "пароль-1c"
WEBHOOK_SECRET = "whsec-test"


class Emulator:
    def __init__(self, url: str):
        self.url = url

    def fault(self, mode: str, match: str = "", times: int | None = None, delay: float | None = None) -> None:
        body = {"mode": mode, "match": match, "times": times}
        if delay is not None:
            body["delay"] = delay
        requests.post(f"{self.url}/__emulator__/faults", json=body, timeout=5).raise_for_status()

    def clear(self) -> None:
        self.fault("none")

    def state(self) -> dict:
        return requests.get(f"{self.url}/__emulator__/state", timeout=5).json()

    def stats(self) -> dict:
        return requests.get(f"{self.url}/__emulator__/stats", timeout=5).json()

    def reset(self) -> None:
        requests.post(f"{self.url}/__emulator__/reset", timeout=5).raise_for_status()


class Chatwoot(Emulator):
    CONVERSATIONS = "POST /api/v1/accounts/1/conversations"

    def conversations_of(self, consultation_id: str) -> list[dict]:
        return [c for c in self.state()["conversations"]
                if (c.get("custom_attributes") or {}).get("consultation_id") == consultation_id]

    def set_status(self, display_id, status: str) -> None:
        requests.post(f"{self.url}/__emulator__/conversations/{display_id}/status", json={"status": status},
                      timeout=5).raise_for_status()


class OneC(Emulator):
    DOCUMENTS = "POST /cl/odata/standard.odata/Document_ТелефонныйЗвонок"

    @property
    def root(self) -> str:
        return f"{self.url}/cl/odata/standard.odata/"

    def documents(self) -> list[dict]:
        return self.state()["Document_ТелефонныйЗвонок"]

    def counterparties(self) -> list[dict]:
        return self.state()["Catalog_Контрагенты"]

    def patch_document(self, ref_key: str, fields: dict) -> None:
        url = f"{self.root}Document_ТелефонныйЗвонок(guid'{ref_key}')?$format=json"
        r = requests.patch(url, json=fields, auth=(ONEC_USER.encode(), ONEC_PASSWORD.encode()), timeout=5)
        assert r.status_code == 200, r.text


def start_chatwoot(webhook_url: str | None = None) -> tuple[ServerThread, Chatwoot]:
    server = ServerThread(chatwoot.create_app(api_token=CHATWOOT_TOKEN, webhook_url=webhook_url,
                                              webhook_secret=WEBHOOK_SECRET if webhook_url else None)).start()
    return server, Chatwoot(server.url)


def start_onec() -> tuple[ServerThread, OneC]:
    server = ServerThread(onec.create_app(user=ONEC_USER, password=ONEC_PASSWORD)).start()
    return server, OneC(server.url)


def upstream_config(cw: Chatwoot | None, oc: OneC | None) -> dict:
    config = {}
    if cw is not None:
        config.update(CHATWOOT_URL=cw.url, CHATWOOT_API_TOKEN=CHATWOOT_TOKEN, CHATWOOT_ACCOUNT_ID=1,
                      CHATWOOT_INBOX_ID=1)
    if oc is not None:
        config.update(ONEC_URL=oc.root, ONEC_USER=ONEC_USER, ONEC_PASSWORD=ONEC_PASSWORD)
    return config


@contextmanager
def both_emulators():
    """Chatwoot and 1C emulators on 127.0.0.1 for the duration of the block; yields their handles."""
    cw_server, cw = start_chatwoot()
    oc_server, oc = start_onec()
    try:
        yield cw, oc
    finally:
        cw_server.stop()
        oc_server.stop()
