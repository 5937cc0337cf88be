"""The ``pricing.check`` handler: one blocking issue, with actions, per unpriced line."""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext_noop

from omniman import texts
from omniman.contrib.catalog import get_catalog
from omniman.contrib.pricing import get_pricing_backend
from omniman.contrib.pricing.modifiers import MISSING_OPTIONS, PRICE_MISSING
from omniman.exceptions import DirectiveError
from omniman.models import Channel, Session
from omniman.services import SessionWriteService

# Issue texts, stored with their ids (omniman.texts) so each screen shows them in its language.
NO_PRICE = gettext_noop("%(name)s has no price.")
NO_PRICE_FOR_OPTIONS = gettext_noop("%(name)s: no price for option(s) %(options)s.")
REMOVE_ITEM = gettext_noop("Remove %(name)s")
REMOVE_OPTION = gettext_noop("Remove option %(option)s")
REPLACE_WITH = gettext_noop("Replace with %(name)s")

logger = logging.getLogger("omniman.contrib.pricing")

CHECK_TOPIC = "pricing.check"
MAX_ALTERNATIVES = 5


class PricingCheckHandler:
    """Reports the session's unpriced lines (``meta["price_missing"]``) as ``price_missing`` issues.

    Payload (the kernel's check directive): ``{"session_key", "channel_code",
    "rev", "check_code"}``. The report goes through ``write_check(...,
    expected_rev=payload["rev"])``, so a run for an older ``rev`` — or a second
    run of the same directive — writes nothing new: the handler is idempotent.
    Run in the transaction that changed the session
    (:func:`omniman.engine.dispatch_before_commit`, ``ctx["locked"]["session"]``),
    it takes that session as it is — locked, in memory, at its rev — without
    reading it again, and writes the check on that object too.
    """

    topic = CHECK_TOPIC
    database_only = True  # writes the check's result, quick: claimed inside the engine's batch transaction

    def handle(self, *, message: Any, ctx: dict[str, Any]) -> None:
        payload = message.payload or {}
        missing = [field for field in ("session_key", "channel_code", "rev", "check_code") if payload.get(field) in (None, "")]
        if missing:
            raise DirectiveError("invalid_payload", f"{self.topic}: missing {', '.join(missing)}.", {"fields": missing})
        session_key, channel_code = payload["session_key"], payload["channel_code"]
        check_code = payload["check_code"]
        try:
            rev = int(payload["rev"])
        except (TypeError, ValueError):
            raise DirectiveError("invalid_payload", f"{self.topic}: rev must be an integer.", {"fields": ["rev"]}) from None
        shared = (ctx.get("locked") or {}).get("session")
        if isinstance(shared, Session) and shared.session_key == session_key and shared.channel.code == channel_code:
            session = shared  # locked by the transaction that changed it (engine.dispatch_before_commit): not read again
        else:
            shared = None
            session = (
                Session.objects.select_related("channel")
                .filter(session_key=session_key, channel__code=channel_code)
                .first()
            )
        if session is None or session.state != Session.State.OPEN or session.rev != rev:
            logger.info(
                "pricing check skipped: the session moved on",
                extra={"session_key": session_key, "rev": rev, "channel": channel_code},
            )
            return
        issues = price_issues(session, source=check_code)
        SessionWriteService.write_check(
            session_key,
            channel_code,
            check_code=check_code,
            expected_rev=rev,
            result={"lines": len(session.lines), "unpriced": [issue["line_id"] for issue in issues]},
            status="issues" if issues else "ok",
            issues=issues,
            session=shared,
        )


def price_issues(session: Session, *, source: str = "pricing") -> list[dict[str, Any]]:
    """One blocking ``price_missing`` issue per unpriced line, with "remove" and "replace with …" actions."""
    unpriced = [line for line in session.lines if line["meta"].get(PRICE_MISSING)]
    if not unpriced:
        return []
    channel: Channel = session.channel
    catalog = get_catalog()
    alternatives = {}
    for sku in dict.fromkeys(line["sku"] for line in unpriced):
        alternatives[sku] = [item for item in catalog.alternatives(sku) if item.sku != sku]
    option_skus = {sku for line in unpriced for sku in line["meta"].get(MISSING_OPTIONS) or []}
    names = {sku: item.name for sku, item in catalog.get_many(sorted(option_skus)).items()} if option_skus else {}
    candidates = sorted({item.sku for items in alternatives.values() for item in items})
    priced = get_pricing_backend().get_prices(candidates, channel) if candidates else {}

    issues = []
    for line in unpriced:
        name = line.get("name") or line["sku"]
        missing_options = list(line["meta"].get(MISSING_OPTIONS) or [])
        actions: list[dict[str, Any]] = [
            {"id": "remove", **texts.message(REMOVE_ITEM, "label", name=name), "ops": [{"op": "remove_line", "line_id": line["line_id"]}]}
        ]
        if missing_options:
            text = texts.message(NO_PRICE_FOR_OPTIONS, name=name, options=", ".join(names.get(s, s) for s in missing_options))
            kept = line["meta"].get("options") or []
            for sku in missing_options:
                remaining = [entry for entry in kept if _option_sku(entry) != sku]
                actions.append(
                    {
                        "id": f"remove_option:{sku}",
                        **texts.message(REMOVE_OPTION, "label", option=names.get(sku, sku)),
                        "ops": [{"op": "set_line_meta", "line_id": line["line_id"], "path": "options", "value": remaining}],
                    }
                )
        else:
            text = texts.message(NO_PRICE, name=name)
            for item in [item for item in alternatives.get(line["sku"], []) if item.sku in priced][:MAX_ALTERNATIVES]:
                actions.append(
                    {
                        "id": f"replace:{item.sku}",
                        **texts.message(REPLACE_WITH, "label", name=item.name),
                        "ops": [{"op": "replace_sku", "line_id": line["line_id"], "sku": item.sku, "name": item.name}],
                    }
                )
        issues.append(
            {
                "id": f"{source}:price_missing:{line['line_id']}",
                "source": source,
                "code": "price_missing",
                "severity": "blocking",
                "line_id": line["line_id"],
                "sku": line["sku"],
                **text,
                "context": {"name": name, "missing_options": missing_options},
                "actions": actions,
            }
        )
    return issues


def _option_sku(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry.strip()
    if isinstance(entry, dict) and isinstance(entry.get("sku"), str):
        return entry["sku"].strip()
    return None


__all__ = ["PricingCheckHandler", "price_issues", "CHECK_TOPIC"]
