"""GDPR erasure of one buyer across every store, and the plan that says what happens to each table.

Erasure removes what identifies or describes the person and keeps the facts aggregates need (event
counts and names, numeric event facts, orders' amounts, the ledger, stock, decisions' propensities),
re-keyed only by the buyer's internal id, which nothing can link back to them once their identifiers
are gone. Two mechanisms:

1. rows keyed by the buyer's id (or their merged ids, or their orders) are deleted or anonymised
   per table, as ``PLAN`` says;
2. every retained free-form column (JSON payloads, memos, details) that still *mentions* one of the
   buyer's identifiers or personal traits (the "needles": user id, e-mail, anonymous ids, phone,
   platform ids, name) has those values replaced by ``[erased]``, wherever the row came from (a
   Stripe payload, a quarantined event keyed by nothing, an audit note).

``PLAN`` lists every table of ``offerloop.models``; tests/identity/test_erasure.py fails when a table
is added without a decision here, and scans every table for the buyer's data after an erasure.

| table                | what erasure does                                                                  |
|----------------------|------------------------------------------------------------------------------------|
| buyers               | tombstone: user_id, traits, consent cleared, deleted_at set (counts stay right)    |
| identities           | delete                                                                             |
| merges               | delete the buyer's merges (their snapshots hold identifiers and traits)             |
| identity_conflicts   | delete rows naming the buyer                                                       |
| events               | anonymise: ids, traits, context cleared; properties reduced to facts (numbers,     |
|                      | booleans, listed keys; quiz answers and free text dropped); message ids that        |
|                      | contain a needle are replaced by their hash                                        |
| touchpoints          | anonymise: click id, landing URL and search term cleared; a source, medium,        |
|                      | campaign or content that names the buyer or holds an e-mail address becomes its    |
|                      | pseudonym; channel stays                                                           |
| quarantine           | delete every row carrying an identifier or a needle (in columns or payload)        |
| buyer_features       | delete                                                                             |
| buyer_scores         | delete (with the features: features.forget)                                        |
| buyer_personas       | delete                                                                             |
| persona_history      | keep (persona names and times by internal id: persona velocity)                    |
| decisions            | keep propensities, rewards and chosen keys; context keeps numeric and one-word     |
|                      | features and the outcome rule (learning still works), free text and needles go    |
| artifacts            | delete (with their versions, files and atom uses: the deliverable is personal)     |
| artifact_versions    | delete                                                                             |
| artifact_files       | delete                                                                             |
| atom_uses            | delete                                                                             |
| orders               | keep amounts, currency, status and lines (bookkeeping); checkout URL cleared,      |
|                      | needles out                                                                        |
| subscriptions        | keep (billing history), needles out of its state                                   |
| payment_events       | keep (webhook idempotency), personal keys and needles out of the payload           |
|                      | (and personal keys out of every event arriving after the erasure)                  |
| entitlements         | delete (access of an erased person ends)                                           |
| fulfilment_tasks     | delete (pending work must not deliver to, or recreate, an erased buyer)            |
| stock_holds          | keep (units sold/held; only the internal id)                                       |
| buyer_claims         | keep (per-buyer limit and coupon counters; only the internal id)                   |
| ledger_entries       | keep (totals unchanged), needles out of tags                                       |
| ledger_postings      | keep (amounts unchanged), needles out of memos                                     |
| ledger_balances      | nothing to do (an account's running sum per currency)                              |
| audit_log            | keep (accountability), needles out of details                                      |
| analytics_purchases, analytics_buyers, analytics_persona_firsts, analytics_persona_purchases: delete    |
|                      | (the consumer's state; an erased                                                  |
|                      | buyer leaves cohorts, retention, velocity and LTV; the ledger keeps revenue totals) |
| jobs                 | keep (background work names objects by internal id; payloads hold no personal data) |
| event_dedup          | keep; a message id that holds a needle is pseudonymised with its event's           |
| parked_events        | keep (seq, consumer); needles out of the error, message id as its event's           |
| pipeline_origin      | no buyer rows: nothing to do                                                       |
| journey_runs         | delete                                                                             |
| delivery_outbox      | keep (counts), recipient, subject and body erased                                  |
| delivery_suppressions| delete the buyer's addresses                                                       |
| delivery_reports     | delete (bounce and complaint reports about their messages)                         |
| journey_versions, delivery_settings, delivery_sender_domains | no buyer rows: nothing to do               |
| journey_ticks        | no buyer rows (a scan's cursor is an internal id): nothing to do                   |
| storefront_checkouts | keep (a hosted buy form's order id and offer key; only internal ids)               |
| promises             | keep (order, offer, due and met times; only the internal id)                       |
| attribution_credits  | keep (shares and amounts per order and channel; only the internal id); personal    |
|                      | source, campaign or content values become their pseudonyms, as in touchpoints      |
| invoices             | keep (numbers, amounts), buyer name and e-mail cleared, stored PDF re-rendered     |
| invoice_counters     | no buyer rows: nothing to do                                                       |
| experiment_exposures | keep (arm and first exposure time; only the internal id): experiment counts stay   |
| experiments          | no buyer rows: nothing to do                                                       |
| webhook_deliveries   | delete those carrying the buyer's journey messages (and their attempts)            |
| push_subscriptions   | delete                                                                             |
| portal_sessions, portal_login_tokens | delete (the buyer portal's sign-ins of an erased person end)       |
| report_snapshots     | delete the workspace's (aggregates that counted the person; recomputed at the next view)  |
| webhook_endpoints, push_vapid_keys | no buyer rows: nothing to do                                         |
| workspaces, api_keys, users, console_sessions, offers, coupons, drop_stock, content_atoms, quizzes,                                |
| composition_policies, actions, policy_snapshots, server_secrets  | no buyer rows: nothing to do             |
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

Action = Literal["tombstone", "delete", "anonymise", "keep", "redact", "none"]

PLAN: Final[Mapping[str, Action]] = {
    "buyers": "tombstone",
    "identities": "delete",
    "merges": "delete",
    "identity_conflicts": "delete",
    "events": "anonymise",
    "event_dedup": "redact",  # message ids pseudonymised with their events (exactly once goes on by the new id)
    "parked_events": "redact",  # a consumer's error about their event may quote them
    "pipeline_origin": "none",
    "touchpoints": "anonymise",
    "quarantine": "delete",
    "buyer_features": "delete",
    "buyer_scores": "delete",
    "buyer_personas": "delete",
    "persona_history": "keep",
    "decisions": "anonymise",
    "artifacts": "delete",
    "artifact_versions": "delete",
    "artifact_files": "delete",
    "atom_uses": "delete",
    "orders": "redact",
    "subscriptions": "redact",
    "payment_events": "redact",
    "entitlements": "delete",
    "fulfilment_tasks": "delete",
    "stock_holds": "keep",
    "buyer_claims": "keep",
    "ledger_entries": "redact",
    "ledger_postings": "redact",
    "ledger_balances": "none",  # an account's running sum per currency: no buyer in it
    "audit_log": "redact",
    "workspaces": "none",
    "api_keys": "none",
    # the console's team members and their sessions: the creator's staff, never buyers
    "users": "none",
    "console_sessions": "none",
    # a hosted buy form's submission: an order id and an offer key (internal ids only)
    "storefront_checkouts": "keep",
    "offers": "none",
    "coupons": "none",
    "drop_stock": "none",
    "content_atoms": "none",
    "quizzes": "none",
    "composition_policies": "none",
    "actions": "none",
    "policy_snapshots": "none",
    "server_secrets": "none",
    "webhook_endpoints": "none",
    "webhook_deliveries": "delete",  # those of the buyer's journey messages (their payload holds the text)
    "webhook_attempts": "delete",
    "push_vapid_keys": "none",
    "push_subscriptions": "delete",
    "invoices": "redact",  # numbers and amounts stay (bookkeeping); the printed name and e-mail go
    "invoice_counters": "none",
    "journey_versions": "none",
    "delivery_settings": "none",
    "delivery_sender_domains": "none",  # the operator's allowed From domains: no buyer data
    "journey_runs": "delete",
    "delivery_outbox": "redact",  # kept for counts (caps, attribution); address and content erased
    "delivery_suppressions": "delete",  # the buyer's addresses: nothing is sent to an erased buyer
    "delivery_reports": "delete",  # bounces and complaints about their messages name their address
    "journey_ticks": "none",  # a schedule's scan: its cursor is an internal buyer id
    "promises": "keep",  # turnaround kept for the creator's record (order, offer, times); only the internal id
    "attribution_credits": "keep",  # shares and amounts by internal id (revenue by channel stays right)
    "experiments": "none",
    "experiment_exposures": "keep",  # arm and exposure time, only the internal id: experiment counts stay
    "analytics_purchases": "delete",  # analytics state: the erased buyer leaves the per-buyer reports
    "analytics_buyers": "delete",
    "analytics_persona_firsts": "delete",
    "analytics_persona_purchases": "delete",
    "report_snapshots": "delete",  # every snapshot of the workspace: recomputed without the person at the next view
    "portal_sessions": "delete",  # the buyer portal: an erased buyer's sessions and unused links end
    "portal_login_tokens": "delete",
    "jobs": "none",  # background work named by ids (an artifact version, a task): nothing personal
}

ERASED: Final = "[erased]"

# Keys whose values are personal wherever they appear (a Stripe payload, event properties, traits).
PII_KEYS: Final = frozenset(
    {"email", "phone", "name", "first_name", "last_name", "firstname", "lastname", "full_name", "address",
     "ip", "street", "city", "postal_code", "zip", "birthday", "username", "customer_email",
     "customer_details", "billing_details", "shipping", "shipping_details", "receipt_email",
     "customer_name", "customer_phone", "line1", "line2"}
)  # fmt: skip
# Event-property keys dropped whole on erasure: what the buyer wrote or chose about themselves.
ANSWER_KEYS: Final = frozenset({"answers", "message", "text", "comment", "feedback", "note", "notes"})
# String-valued event properties that are facts about the sale, not the person: kept.
FACT_KEYS: Final = frozenset(
    {"currency", "order_id", "offer", "offer_key", "product_id", "sku", "plan", "quiz_id", "quiz_version",
     "policy_id", "placement", "action", "action_key", "decision_id", "coupon", "category", "status",
     "provider", "interval", "kind", "component", "ref", "source", "medium", "campaign", "channel"}
)  # fmt: skip
MIN_NEEDLE: Final = 3


def needles_of(identifiers: Iterable[str], traits: Iterable[Mapping[str, Any]]) -> list[str]:
    """The lower-cased strings that identify the buyer: identifier values and personal trait values."""
    found = {v.lower() for v in identifiers if v}
    for t in traits:
        for key, value in (t or {}).items():
            if key.lower() in PII_KEYS and isinstance(value, str):
                found.add(value.strip().lower())
    return sorted(n for n in found if len(n) >= MIN_NEEDLE)


def like_forms(needle: str) -> list[str]:
    """The needle as it appears in stored text: as is, and as JSON escapes it (non-ASCII as \\uXXXX)."""
    escaped = json.dumps(needle)[1:-1].lower()
    return sorted({needle, escaped})


@functools.lru_cache(maxsize=256)
def _pattern(needles: tuple[str, ...]) -> re.Pattern[str]:
    # Whole tokens only: user id "ana" is in "ana@x.org" and "Hi ana!", not in "banana" or "order_ana2".
    return re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in needles), re.IGNORECASE)


def mentions(value: Any, needles: list[str]) -> bool:
    """Whether a needle occurs as a whole token anywhere in ``value`` (keys and nested values too)."""
    if not needles:
        return False
    if isinstance(value, str):
        return _pattern(tuple(needles)).search(value) is not None
    if isinstance(value, Mapping):
        return any(mentions(k, needles) or mentions(v, needles) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(mentions(v, needles) for v in value)
    return False


def carries(value: Any, needles: list[str]) -> bool:
    """Whether some string in ``value`` *is* one of the needles (an identifier field, not a mention)."""
    if isinstance(value, str):
        return value.strip().lower() in needles
    if isinstance(value, Mapping):
        return any(carries(v, needles) for v in value.values())
    if isinstance(value, list | tuple):
        return any(carries(v, needles) for v in value)
    return False


def redact(value: Any, needles: list[str]) -> Any:
    """``value`` without personal keys, and with every string that mentions a needle replaced."""
    if isinstance(value, str):
        return ERASED if mentions(value, needles) else value
    if isinstance(value, Mapping):
        return {
            (ERASED if mentions(k, needles) else k): redact(v, needles)
            for k, v in value.items()
            if k.lower() not in PII_KEYS
        }
    if isinstance(value, list | tuple):
        return [redact(v, needles) for v in value]
    return value


def facts(value: Any, needles: list[str], key: str | None = None) -> Any:
    """What stays of event properties or a decision's context: numbers, booleans and listed string
    facts; free text, answers and anything personal are dropped (None when nothing is left)."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return (
            value if key is not None and key.lower() in FACT_KEYS and not mentions(value, needles) else None
        )
    if isinstance(value, Mapping):
        kept = {}
        for k, v in value.items():
            if k.lower() in PII_KEYS or k.lower() in ANSWER_KEYS or mentions(k, needles):
                continue
            fact = facts(v, needles, k)
            if fact is not None:
                kept[k] = fact
        return kept or None
    if isinstance(value, list | tuple):
        items = [f for v in value if (f := facts(v, needles, key)) is not None]
        return items or None
    return None


_CATEGORY = re.compile(r"^[\w.:/@+-]{1,40}$")


def decision_context(context: Mapping[str, Any] | None, needles: list[str]) -> dict[str, Any]:
    """What a logged decision keeps of its context: the model's numeric and categorical features (so
    offline evaluation and learning still work) and the outcome rule; free text and needles go."""
    kept: dict[str, Any] = {}
    for key, value in (context or {}).items():
        if key == "_outcome":
            kept[key] = value  # the action's outcome rule: configuration, not personal
        elif mentions(key, needles) or key.lower().removeprefix("req_") in PII_KEYS:
            continue
        elif isinstance(value, str):
            if _CATEGORY.match(value) and not mentions(value, needles):
                kept[key] = value
        elif (fact := facts(value, needles, key)) is not None:
            kept[key] = fact
    return kept


def personal(value: str, needles: list[str]) -> bool:
    """Whether a free-form value (a UTM parameter) names the buyer or carries an e-mail address."""
    return "@" in value or mentions(value, needles)


def pseudonym(message_id: str) -> str:
    """A stable replacement for a message id that carried personal data (still unique per workspace)."""
    return "erased-" + hashlib.sha256(message_id.encode()).hexdigest()[:40]
