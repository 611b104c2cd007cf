"""Analytics state kept by the ``analytics`` pipeline consumer: the workspace's purchases (the one definition,
see ``analytics.purchases``), one summary row per buyer with a purchase, and each buyer's first assignment to
each persona. Narrow rows, instants as integers (epoch microseconds, UTC days, month indexes), so a report is
a group-by over one table instead of a re-derivation from orders, events, touchpoints and personas."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base


class AnalyticsPurchase(Base):
    """One purchase: a paid checkout order, or a creator's/server's ``Order Completed`` of another order."""

    __tablename__ = "analytics_purchases"
    __table_args__ = (
        Index(None, "workspace_id", "buyer_id"),
        Index(None, "workspace_id", "day"),
        # the summary of a period in one currency reads only this index
        Index(
            "ix_analytics_purchases_summary", "workspace_id", "currency", "at_us", "buyer_id", "amount_minor"
        ),
        # every cohort report reads only this one (no lookup of the table's rows)
        Index(
            "ix_analytics_purchases_cohorts",
            "workspace_id",
            "cohort_month",
            "month",
            "currency",
            "first_touch",
            "persona",
            "day",
            "buyer_id",
            "amount_minor",
        ),
    )

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    # the order id (checkout's, or the one an event names; hashed past 120 characters), else "event:<seq>"
    purchase_key: Mapped[str] = mapped_column(String(130), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(40))
    at_us: Mapped[int] = mapped_column(BigInteger)  # epoch microseconds, UTC
    day: Mapped[int] = mapped_column(Integer)  # UTC days since 1970-01-01
    month: Mapped[int] = mapped_column(Integer)  # year * 12 + month - 1
    cohort_month: Mapped[int] = mapped_column(Integer)  # the month of the buyer's first purchase
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # net of refunds
    refunded_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(16))  # checkout | event
    # the buyer's segments, copied on every purchase row so cohorts by segment need no join
    first_touch: Mapped[str | None] = mapped_column(String(64), nullable=True)
    persona: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AnalyticsBuyer(Base):
    """Per buyer with at least one purchase: first purchase, distinct purchase days, segments."""

    __tablename__ = "analytics_buyers"
    # retention and cohort sizes read only these (no lookup of the table's rows)
    __table_args__ = (
        Index("ix_analytics_buyers_retention", "workspace_id", "first_day", "second_day", "holdout_draw"),
        Index(
            "ix_analytics_buyers_cohorts",
            "workspace_id",
            "first_month",
            "first_touch",
            "persona",
            "first_day",
        ),
    )

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    buyer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    first_at_us: Mapped[int] = mapped_column(BigInteger)
    first_day: Mapped[int] = mapped_column(Integer)
    second_day: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the next distinct purchase day
    first_month: Mapped[int] = mapped_column(Integer)
    purchases: Mapped[int] = mapped_column(Integer)
    # decisions' stable per-buyer draw: in the holdout group when < holdout_share
    holdout_draw: Mapped[float] = mapped_column(Float)
    first_touch: Mapped[str | None] = mapped_column(String(64), nullable=True)
    first_touch_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    persona: Mapped[str | None] = mapped_column(String(64), nullable=True)  # current
    first_persona: Mapped[str | None] = mapped_column(String(64), nullable=True)
    first_assigned_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AnalyticsPersonaFirst(Base):
    """A buyer's first assignment to one persona (every buyer, purchased or not: persona velocity)."""

    __tablename__ = "analytics_persona_firsts"
    # velocity counts (persona, day, bought_day) groups from this index alone, in its order
    __table_args__ = (
        Index(
            "ix_analytics_persona_firsts_velocity",
            "workspace_id",
            "purchased",
            "persona",
            "day",
            "bought_day",
        ),
    )

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    buyer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    persona: Mapped[str] = mapped_column(String(64), primary_key=True)
    at_us: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[int] = mapped_column(Integer)
    purchased: Mapped[bool] = mapped_column(Boolean)  # the buyer has at least one purchase
    # the UTC day of the buyer's first purchase at or after this assignment (None: none yet)
    bought_day: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AnalyticsPersonaPurchase(Base):
    """A purchase made at or after the buyer's first assignment to a persona (persona LTV, summed from one
    covering index)."""

    __tablename__ = "analytics_persona_purchases"
    __table_args__ = (
        Index(
            "ix_analytics_persona_purchases_revenue",
            "workspace_id",
            "persona",
            "currency",
            "day",
            "amount_minor",
        ),
    )

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    buyer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    persona: Mapped[str] = mapped_column(String(64), primary_key=True)
    purchase_key: Mapped[str] = mapped_column(String(130), primary_key=True)
    currency: Mapped[str] = mapped_column(String(8))
    day: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
