"""The built-in default feature spec, covering what the demo personas use (examples/demo/features.yaml
writes it out); :data:`offerloop.features.spec.DEFAULT_FEATURE_SPEC` is it validated."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["DEFAULT_FEATURE_SPEC_DATA"]

_ORDER: Final = {"event": "Order Completed"}
_SUBSCRIBED: Final = [{"event": "Subscription Started"}, {"event": "Subscription Renewed"}]
_COMMUNITY: Final = {"event": "Community *"}
_PRESENT: Final = {"exists": True, "not_in": ["", None]}

DEFAULT_FEATURE_SPEC_DATA: Final[dict[str, Any]] = {
    "suppressed_factor": 0.25,
    "features": [
        {"name": "orders", "kind": "count", "match": _ORDER},
        {
            "name": "monetary_minor",
            "kind": "sum",
            "match": _ORDER,
            "value": "total_minor",
            "fallback": {"value": "revenue", "scale": "minor_units"},
            "currency": {"property": "currency", "code": "USD"},
        },
        {
            "name": "drop_orders",
            "kind": "count",
            "match": {**_ORDER, "where": {"product_type": "drop"}},
        },
        {
            "name": "minutes_to_first_drop_purchase",
            "kind": "min_delay_minutes",
            "match": {**_ORDER, "where": {"product_type": "drop"}},
            "since_property": "drop_opened_at",
        },
        # Minutes from a drop's release (the ISO time in release_at) to the buyer's first look at it.
        {
            "name": "minutes_to_first_drop_view",
            "kind": "min_delay_minutes",
            "match": {"event": "Drop Viewed"},
            "since_property": "release_at",
        },
        {"name": "drop_views", "kind": "count", "match": {"event": "Drop Viewed"}},
        {"name": "coupon_orders", "kind": "count", "match": {**_ORDER, "where": {"coupon": _PRESENT}}},
        {
            "name": "coupon_attempts",
            "kind": "count",
            "match": [{"event": "Coupon Applied"}, {"event": "Coupon Denied"}],
        },
        {
            "name": "product_view_share",
            "kind": "share",
            "match": {"event": "Product Viewed"},
            "of": [{"type": "page"}, {"type": "screen"}, {"event": "Product Viewed"}],
        },
        {"name": "gift_orders", "kind": "count", "match": {**_ORDER, "where": {"gift": True}}},
        {"name": "weekend_share", "kind": "weekday_share", "weekdays": [5, 6]},
        {"name": "active_hour", "kind": "top_local_hour"},
        {
            "name": "subscription_active",
            "kind": "flag",
            "set_on": _SUBSCRIBED,
            "clear_on": {"event": "Subscription Cancel*"},
        },
        {"name": "renewals", "kind": "count", "match": {"event": "Subscription Renewed"}},
        {
            "name": "modules_completed",
            "kind": "distinct_count",
            "match": {"event": "Module Completed"},
            "value": "module_id",
        },
        {"name": "lessons_started", "kind": "count", "match": {"event": "Lesson Started"}},
        {"name": "page_views_30d", "kind": "decayed_count", "match": {"type": "page"}, "half_life_days": 30},
        {"name": "quiz_completed", "kind": "flag", "set_on": {"event": "Quiz Completed"}},
        {
            "name": "quiz_answers",
            "kind": "latest_object",
            "match": {"event": "Quiz Completed"},
            "value": "answers",
        },
        {
            "name": "assessment_score",
            "kind": "latest",
            "match": {"event": "Assessment Completed"},
            "value": "score",
        },
        {"name": "community_posts_30d", "kind": "decayed_count", "match": _COMMUNITY, "half_life_days": 30},
        {"name": "community_posts", "kind": "count", "match": _COMMUNITY},
        {"name": "events_30d", "kind": "decayed_count", "half_life_days": 30},
        {"name": "first_touch_channel", "kind": "first_value", "value_from": "channel"},
        {"name": "last_touch_channel", "kind": "last_value", "value_from": "channel"},
        {"name": "days_since_last_seen", "kind": "recency_days"},
        {
            "name": "stage",
            "kind": "stage",
            "stages": [
                {"name": "visitor"},
                {"name": "lead", "match": {"type": "identify", "where": {"email": _PRESENT}}},
                {
                    "name": "engaged",
                    "match": [{"event": "Quiz Completed"}, {"event": "Assessment Completed"}],
                },
                {"name": "customer", "match": _ORDER},
                {"name": "repeat_customer", "match": _ORDER, "min_count": 2},
                {"name": "subscriber", "match": _SUBSCRIBED},
                {"name": "superfan", "all": [{"match": _ORDER, "min_count": 3}, {"match": _COMMUNITY}]},
            ],
        },
    ],
}
