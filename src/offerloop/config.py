"""One validated settings object, read from the environment (prefix OFFERLOOP_) only when asked."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from offerloop.core.clock import offset_clock, utcnow

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "dev-secret", "secret"})
MIN_SECRET_LENGTH = 16
# A DNS name of letters, digits and hyphens (IDNA domains in their xn-- form), at least two labels.
DOMAIN_NAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9][a-z0-9-]{0,61}[a-z0-9]"
)


def is_placeholder_secret(secret: str) -> bool:
    """A secret anyone could guess: a documented default, or too short to resist guessing."""
    return secret.strip() in PLACEHOLDER_SECRETS or len(secret.strip()) < MIN_SECRET_LENGTH


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bind_host(host: str) -> str:
    """The address to bind: an IPv6 address may be given in URL brackets (``[::1]``)."""
    return host.strip().strip("[]")


def local_url(host: str, port: int) -> str:
    """``http://host:port`` for the address ``serve`` binds (IPv6 in brackets, exactly once)."""
    name = bind_host(host)
    return f"http://{f'[{name}]' if ':' in name else name}:{port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OFFERLOOP_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///offerloop.db"
    # SQLite durability: NORMAL survives a killed process (WAL is in the OS cache); FULL survives power loss.
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL"
    db_pool_size: int = 8
    # Signs download links. Placeholders are refused in production and by a server bound to a
    # non-loopback address; on loopback in development the database's own random secret is used.
    secret: str = "dev-secret"
    # The address buyers reach this server at (e.g. https://offers.example.com): pages build their
    # links and form actions from it, never from the request's Host header.
    public_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    log_json: bool = True
    # Segment's published limits.
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    # Share of buyers served the rules-only order, so the model's lift can be measured online.
    holdout_share: float = Field(default=0.10, ge=0.0, le=1.0)
    # A placement learns at most once per this many seconds after new rewards (0: no learning jobs queued).
    learn_interval_s: float = Field(default=60.0, ge=0.0)
    # Background-job threads inside `offerloop serve` (renders, fulfilment, learning, due work; 0: none, jobs
    # run only in `offerloop worker` processes), and how often idle threads look for work queued elsewhere.
    worker_threads: int = Field(default=2, ge=0, le=32)
    worker_poll_s: float = Field(default=0.5, gt=0.0, le=60.0)
    # Lifetime of signed download links, in seconds.
    download_ttl_s: int = Field(default=900, ge=10)
    # Optional voice rewriter: an OpenAI-compatible endpoint (off unless both URL and model are set).
    rewriter_url: str | None = None
    rewriter_model: str | None = None
    rewriter_api_key: str | None = None
    rewriter_timeout_s: float = Field(default=8.0, gt=0.0)
    rewriter_voice: str = "warm, direct, second person, short sentences"
    rewriter_max_attempts: int = Field(default=1, ge=1, le=5)
    # Domains a rewrite may name besides the atom's own (comma-separated, e.g. "rowanvale.com,shop.io").
    rewriter_allowed_domains: str = ""
    # Per artifact: parallel calls and a deadline for all of them. Per endpoint: a circuit breaker that
    # stops calling after N consecutive failures for a cool-down. Per process: an LRU of buyer-free rewrites.
    rewriter_concurrency: int = Field(default=4, ge=1, le=32)
    rewriter_artifact_deadline_s: float = Field(default=30.0, gt=0.0)
    rewriter_breaker_failures: int = Field(default=3, ge=1)
    rewriter_breaker_cooldown_s: float = Field(default=60.0, ge=0.0)
    rewriter_cache_size: int = Field(default=1024, ge=0)
    # The event pipeline (docs/pipeline.md): consumer threads inside `offerloop serve` (0: `offerloop
    # worker` processes only); buyer partitions of a new workspace's log (fixed at its first event;
    # default 1 on SQLite, whose one writer gains nothing from more, 8 on PostgreSQL); events per
    # step; attempts before an event is parked, with backoff between them; seconds without progress
    # before /readyz reports a consumer stuck; how long a fresh read waits for a worker's checkpoint.
    pipeline_workers: int = Field(default=2, ge=0, le=32)
    pipeline_partitions: int | None = Field(default=None, ge=1, le=1024)
    pipeline_batch: int = Field(default=2000, ge=1, le=100_000)
    pipeline_step_s: float = Field(default=0.0, ge=0.0, le=60.0)
    pipeline_max_attempts: int = Field(default=5, ge=1, le=100)
    pipeline_backoff_base_s: float = Field(default=1.0, gt=0.0)
    pipeline_backoff_cap_s: float = Field(default=30.0, gt=0.0)
    pipeline_stuck_s: float = Field(default=60.0, gt=0.0)
    pipeline_fresh_wait_s: float = Field(default=2.0, ge=0.0)
    # SQLite: consumer steps read, and prepare what they can, outside the writer lock. None: only in processes
    # that do not answer requests (`offerloop worker`): beside request threads they compete for the same GIL.
    pipeline_read_ahead: bool | None = None
    # Tests only (honoured when environment is "test"): a file holding the seconds the job clock runs ahead.
    test_clock_file: str | None = None
    # Payments. Stripe is optional; the manual provider (mark paid by API or CLI) always works.
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = "https://api.stripe.com"
    # Percentages as decimal strings (money is never a float): tax added at checkout, the platform's fee.
    tax_percent: str = "0"
    platform_fee_percent: str = "0"
    # Live drops' public short link (/v1/live/…/go) makes a checkout that holds a unit: requests per minute
    # from one client address per drop, and unpaid holds one address may have of a drop at once (a hold lapses
    # after checkout's HOLD_MINUTES), per server process.
    live_go_per_minute: int = Field(default=20, ge=1, le=100_000)
    # How old the health gauges of /metrics (feature and persona-mix PSI, alert counts) may be: a server
    # recomputes every workspace's figures at most this often, in one background thread; 0 turns them off.
    health_metrics_every_s: float = Field(default=300.0, ge=0, le=86_400)
    live_go_holds_per_address: int = Field(default=3, ge=1, le=100_000)
    # Outgoing webhooks and web push: whether deliveries may target private, loopback or link-local addresses
    # (an SSRF guard, also checked on the resolved address at send time; tests and local development only),
    # and the timeout of one webhook attempt (connect + response), in seconds.
    webhook_allow_private: bool = False
    webhook_timeout_s: float = Field(default=10.0, gt=0.0, le=60.0)
    # E-mail (delivery/email): an SMTP server (smtp://user:pass@host:587?starttls=true, smtps://… for
    # implicit TLS); unset, messages are captured to a Maildir (maildir_path, else next to a SQLite
    # database, else ./maildir). The URL carries the password: kept out of repr. The bounce address is the
    # envelope sender (Return-Path); unset, the address in mail_from. DKIM signs when all three are set.
    smtp_url: str | None = Field(default=None, repr=False)
    mail_from: str = "offerloop <no-reply@localhost>"
    bounce_address: str | None = None
    maildir_path: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key_path: str | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0.0)
    # VERP: each e-mail's envelope sender carries its outbox id, signed (bounces+<id>-<mac>@domain), so a
    # bounce names its message unforgeably. None: on when bounce_address is set. With VERP on, a report naming
    # its message only by Message-ID is refused (every recipient of a message knows its Message-ID).
    smtp_verp: bool | None = None
    # Sender verification: domains every workspace may use in its From (comma-separated, e.g.
    # "mail.example.com,example.org"); more per workspace with `offerloop workspace senders allow WS DOMAIN`.
    # Enforced when smtp_url is set or this lists a domain; with the embedded Maildir alone any From goes.
    sender_domains: str = ""

    # The console (/console): how long a sign-in lasts, and sign-in attempts a minute per client address and
    # per e-mail (per server process; a burst of that many, then one every 60/N seconds).
    console_session_hours: float = Field(default=12.0, gt=0.0, le=24 * 30)
    console_logins_per_minute: int = Field(default=5, ge=1, le=10_000)
    # Heavy console reports (attribution, cohorts, LTV fit, persona velocity, decision evaluation): one whose
    # last computation took at most `console_report_inline_s` is computed on every view; a slower one is shown
    # from its snapshot, refreshed in the background once it is older than `console_report_max_age_s`.
    console_report_inline_s: float = Field(default=0.15, ge=0.0, le=60.0)
    console_report_max_age_s: float = Field(default=300.0, ge=0.0, le=86_400.0)
    # A snapshot neither computed nor viewed for this long (parameters nobody looks at again) is deleted by the
    # recurring `reports.prune` job; at least two hours, as a view marks a snapshot at most once an hour.
    report_snapshot_keep_s: float = Field(default=7 * 86_400.0, ge=7_200.0, le=3_650 * 86_400.0)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production" and is_placeholder_secret(self.secret):
            raise ValueError("OFFERLOOP_SECRET must be set to a real secret in production")
        return self

    @field_validator("public_url")
    @classmethod
    def _public_url_is_absolute(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                "OFFERLOOP_PUBLIC_URL must be an absolute http(s) URL like https://offers.example.com"
            )
        return value.rstrip("/")

    def job_clock(self) -> Callable[[], datetime]:
        """The clock background jobs run on: UTC, or in tests UTC moved by ``test_clock_file``."""
        if self.environment == "test" and self.test_clock_file:
            return offset_clock(self.test_clock_file)
        return utcnow

    @field_validator("sender_domains")
    @classmethod
    def _domain_list(cls, value: str) -> str:
        domains = [d.strip().lower().rstrip(".") for d in value.split(",") if d.strip()]
        for domain in domains:
            if not DOMAIN_NAME.fullmatch(domain):
                raise ValueError(
                    f"OFFERLOOP_SENDER_DOMAINS: {domain!r} is not a domain name like mail.example.com"
                )
        return ",".join(dict.fromkeys(domains))

    @property
    def verp_enabled(self) -> bool:
        """Whether envelope senders carry VERP tokens: ``smtp_verp``, by default on with a bounce address."""
        return self.smtp_verp if self.smtp_verp is not None else bool(self.bounce_address)

    @property
    def sender_domain_list(self) -> frozenset[str]:
        return frozenset(d for d in self.sender_domains.split(",") if d)

    @property
    def senders_verified(self) -> bool:
        """Whether a workspace's From must be in an allowed domain (not with the embedded Maildir alone)."""
        return self.smtp_url is not None or bool(self.sender_domains)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
