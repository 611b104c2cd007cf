"""A journey as a creator writes it (YAML or JSON), validated by the declarative toolkit.

```yaml
name: purchase_onboarding
category: marketing            # or transactional: receipts, dunning (no marketing consent or caps needed)
trigger: {event: Order Completed, where: {properties.total_minor: {gte: 1}}}
goal: {event: Lesson Completed}          # reaching it ends the run (converted)
reentry: 30d                             # never | always | a duration since the last entry
steps:
  - send: {channel: email, subject: "Welcome {{ buyer.traits.first_name }}", text: "..."}
  - wait: 2d
  - wait_until: "09:00"                  # the next 09:00 in the buyer's own zone
  - branch:
      when: {features.lessons_completed: {lt: 1}}
      then:
        - decide: {placement: nudge, as: offer}
        - send: {channel: email, subject: "...", text: "{{ offer.title }} {{ link(offer.url) }}"}
  - branch:                              # an A/B test: the buyer's arm in experiment "welcome-copy"
      when: {experiments.welcome-copy: short}
      then: [{send: {channel: email, subject: "Hi", text: "..."}}]
      else: [{send: {channel: email, subject: "Welcome aboard", text: "..."}}]
```

Conditions are the one condition language (:mod:`offerloop.core.conditions`); templates are Jinja2 in a
sandbox (:mod:`offerloop.delivery.templates`), checked here for syntax.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from offerloop.core import conditions, durations
from offerloop.declarative import Text, matching, problem_at
from offerloop.delivery import templates

CHANNELS: Final = ("email", "push", "webhook", "inapp")
# What a journey's conditions read: the buyer record, and the trigger event's properties.
SCOPE: Final = conditions.Scope(
    roots=frozenset({"traits", "features", "persona", "entitlements", "properties"})
)
# A branch may also split on an experiment: ``experiments.<key>`` is the buyer's arm, assigned (sticky, exposure
# logged) when the branch is evaluated.
BRANCH_SCOPE: Final = conditions.Scope(roots=SCOPE.roots | {"experiments"})
MAX_STEPS: Final = 100

Name = Annotated[
    str, matching(r"[a-z][a-z0-9_]{0,63}", "a name of lower-case letters, digits and _ (at most 64)")
]
LocalTime = Annotated[str, matching(r"([01]\d|2[0-3]):[0-5]\d", "a local time HH:MM (24-hour), e.g. 09:00")]


def _parser(scope: conditions.Scope) -> Any:
    def parse(value: Any) -> conditions.Condition:
        try:
            return conditions.parse(value, scope=scope)
        except conditions.ConditionError as exc:
            raise conditions.pydantic_error(exc) from None

    return parse


def _serialized(scope: conditions.Scope, description: str) -> tuple[Any, ...]:
    return (
        PlainValidator(_parser(scope)),
        PlainSerializer(conditions.to_data),
        WithJsonSchema({"type": "object", "description": description}),
    )


Condition: TypeAlias = Annotated[
    conditions.Condition, *_serialized(SCOPE, "a condition (docs/conditions.md)")
]
BranchCondition: TypeAlias = Annotated[
    conditions.Condition,
    *_serialized(BRANCH_SCOPE, "a condition (docs/conditions.md); experiments.<key> too"),
]


def experiment_keys(condition: conditions.Condition) -> list[str]:
    """The experiments a branch condition reads (``experiments.<key>``), in order of first use."""
    keys = (leaf.key for leaf in conditions.leaves(condition) if leaf.root == "experiments")
    return list(dict.fromkeys(k for k in keys if k))


def all_experiment_keys(journey: Journey) -> list[str]:
    """Every experiment the journey's branches read."""
    out: list[str] = []

    def walk(steps: Any) -> None:
        for step in steps:
            if isinstance(step, BranchStep):
                out.extend(experiment_keys(step.branch.when))
                walk(step.branch.then)
                walk(step.branch.else_)

    walk(journey.steps)
    return list(dict.fromkeys(out))


# The longest wait, window or cap period: ten years. Longer ones mean nothing to a journey, and a date that far
# out overflows (`now + 10**8 weeks` is past the year 9999): one such journey stopped the clock of every
# workspace's journeys.
MAX_DURATION_S: Final = 3650 * 86400.0


def _duration(value: Any) -> float:
    length = durations.seconds(value)
    if length is None or length <= 0 or isinstance(value, int | float):
        raise PydanticCustomError(
            "config_duration", "must be a duration such as 30m, 2h, 3d or 1w, got {got}", {"got": repr(value)}
        )
    if length > MAX_DURATION_S:
        raise PydanticCustomError(
            "config_duration", "must be at most 3650d (ten years), got {got}", {"got": repr(value)}
        )
    return length


Duration: TypeAlias = Annotated[
    float,
    PlainValidator(_duration),
    PlainSerializer(durations.text),
    WithJsonSchema({"type": "string", "description": "a duration: 30m, 2h, 3d, 1w"}),
]


def _template(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "config_template", "must be a template (text), got {got}", {"got": repr(value)}
        )
    problem = templates.syntax_problem(value)
    if problem is not None:
        raise PydanticCustomError("config_template", "{problem}", {"problem": problem})
    return value


Template: TypeAlias = Annotated[str, PlainValidator(_template), WithJsonSchema({"type": "string"})]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EventMatch(_Model):
    """An event by name, with a condition on its properties and the buyer record."""

    event: Text
    where: Condition | None = None


class EntitlementTrigger(_Model):
    """An entitlement granted (the ``Entitlement Granted`` event): ``granted`` is a component (``module``)
    or ``component:ref``, either with ``*`` wildcards (``module:lesson-*``)."""

    granted: Annotated[
        str, matching(r"[a-z_*]{1,40}(:[^\s]{1,200})?", "a component or component:ref, e.g. module:lesson-*")
    ]


class Expiring(_Model):
    """Fires once per (thing, its end time) when that end is within ``within``: an entitlement's access end,
    a trial's end, or a subscription's period end. A renewal or extension (a new end) is a new occurrence."""

    what: Literal["entitlement", "trial", "subscription"]
    within: Duration
    component: str | None = Field(
        default=None, max_length=241, description="entitlements only: a component or component:ref pattern"
    )


WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Schedule(_Model):
    """At each tick (``every`` day, week or month at local ``at``), the buyers matching ``where`` enter.
    ``days``: weekdays for ``week`` (default mon), days of the month for ``month`` (default 1; a day past
    the month's end is its last day). ``zone``: the workspace's time zone, or each buyer's own."""

    every: Literal["day", "week", "month"]
    at: LocalTime
    days: (
        list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]
        | list[Annotated[int, Field(ge=1, le=31)]]
        | None
    ) = Field(default=None, max_length=31)
    zone: Literal["workspace", "buyer"] = "workspace"
    where: Condition | None = None

    @model_validator(mode="after")
    def _days_fit(self) -> Schedule:
        kind = {"day": None, "week": str, "month": int}[self.every]
        if self.days is not None and (kind is None or any(not isinstance(d, kind) for d in self.days)):
            wanted = {"day": "no days", "week": "weekdays (mon..sun)", "month": "days of the month (1-31)"}
            raise problem_at(("days",), f"every {self.every} takes {wanted[self.every]}")
        if self.days is not None and not self.days:
            raise problem_at(("days",), "give at least one day, or leave days out")
        return self


TRIGGER_KINDS: Final = ("event", "persona", "entitlement", "expiring", "schedule")


# Events offerloop records by itself for each message it hands over (not what a buyer does): a journey
# triggered by one would feed on its own sends.
SENDING_EVENTS: Final = frozenset(
    {"Message Sent", "Message Delivered", "Message Deferred", "Message Failed", "Message Bounced"}
)


class Trigger(_Model):
    """What starts a run: a track event by name, the buyer entering a persona, an entitlement granted, an
    end (entitlement, trial, subscription period) coming within a window, or a schedule; ``where`` must hold
    too (for an event, ``properties`` are the event's)."""

    event: Text | None = None
    persona: Text | None = Field(default=None, description="the buyer entered this persona")
    entitlement: EntitlementTrigger | None = None
    expiring: Expiring | None = None
    schedule: Schedule | None = None
    where: Condition | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        given = [k for k in TRIGGER_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise problem_at((), f"give exactly one of {', '.join(TRIGGER_KINDS)}")
        if self.schedule is not None and self.where is not None:
            raise problem_at(("where",), "a schedule's audience condition goes in schedule.where")
        if self.event in SENDING_EVENTS:
            raise problem_at(("event",), f"{self.event} is recorded by offerloop for the messages it sends: a journey "
                             "it starts would start itself again (a loop); trigger on what the buyer does, such "
                             "as Message Opened or Message Clicked")  # fmt: skip
        if (
            self.expiring is not None
            and self.expiring.component is not None
            and self.expiring.what != "entitlement"
        ):
            raise problem_at(("expiring", "component"), "only for what: entitlement")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in TRIGGER_KINDS if getattr(self, k) is not None)

    @property
    def timed(self) -> bool:
        """Fired by the clock (the ``delivery.clock`` job), not by an event."""
        return self.expiring is not None or self.schedule is not None


class Window(_Model):
    """Local times between which a message may be sent (``start`` > ``end`` spans midnight)."""

    start: LocalTime
    end: LocalTime


class Send(_Model):
    channel: Literal["email", "push", "webhook", "inapp"]
    subject: Template | None = Field(default=None, description="e-mail subject, push and in-app title")
    text: Template
    html: Template | None = None
    url: Template | None = Field(default=None, description="where a push or in-app prompt leads")
    event: str | None = Field(
        default=None, max_length=120, description="webhook event type (default journey.message)"
    )  # the webhook channel's bound on a delivery's type

    @field_validator("subject")
    @classmethod
    def _short(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 998:
            raise ValueError("must be at most 998 characters (RFC 5322's line limit)")
        return value


class Decide(_Model):
    placement: Text
    as_: Name = Field(default="offer", alias="as")
    k: int = Field(default=1, ge=1, le=10)
    candidates: list[Text] | None = Field(
        default=None,
        max_length=200,
        description='action keys to choose from; "offer:*" is every key starting offer:',
    )


class Branch(_Model):
    when: BranchCondition
    then: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)
    else_: list[Step] = Field(default_factory=list, alias="else", max_length=MAX_STEPS)


class SendStep(_Model):
    send: Send
    id: Name | None = None


class WaitStep(_Model):
    wait: Duration
    id: Name | None = None


class WaitUntilStep(_Model):
    wait_until: LocalTime
    id: Name | None = None


class DecideStep(_Model):
    decide: Decide
    id: Name | None = None


class BranchStep(_Model):
    branch: Branch
    id: Name | None = None


class ExitStep(_Model):
    exit: Text
    id: Name | None = None


STEP_KINDS: Final = ("send", "wait", "wait_until", "decide", "branch", "exit")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [k for k in STEP_KINDS if k in value]
        return found[0] if len(found) == 1 else None
    return (
        next((k for k in STEP_KINDS if k in type(value).model_fields), None)
        if isinstance(value, BaseModel)
        else None
    )


Step: TypeAlias = Annotated[
    Annotated[SendStep, Tag("send")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitUntilStep, Tag("wait_until")]
    | Annotated[DecideStep, Tag("decide")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(
        _step_kind,
        custom_error_type="journey_step",
        custom_error_message=f"a step is a mapping with exactly one of {', '.join(STEP_KINDS)}",
    ),
]


class Journey(_Model):
    name: Name
    description: str = ""
    category: Literal["transactional", "marketing"] = "marketing"
    trigger: Trigger
    goal: EventMatch | None = None
    reentry: Literal["never", "always"] | Duration = "never"
    send_window: Window | None = Field(
        default=None, description="local send window; default: the workspace's quiet hours (marketing only)"
    )
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)


Branch.model_rebuild()

_PATH: Final = re.compile(r"^\d+(\.(then|else)\.\d+)*$")


def step_at(journey: Journey, path: str) -> Any:
    """The step at ``path`` ("2", "2.then.0"), or None if the path leads nowhere."""
    if not _PATH.match(path):
        return None
    parts = path.split(".")
    items: list[Any] = list(journey.steps)
    step: Any = None
    for i in range(0, len(parts), 2):
        index = int(parts[i])
        if index >= len(items):
            return None
        step = items[index]
        if i + 1 < len(parts):
            if not isinstance(step, BranchStep):
                return None
            items = list(step.branch.then if parts[i + 1] == "then" else step.branch.else_)
    return step


def after(journey: Journey, path: str) -> str | None:
    """The path of the step that follows ``path`` once it is done (leaving a branch's list continues after
    the branch), or None at the end of the journey."""
    parts = path.split(".")
    while parts:
        index = int(parts[-1]) + 1
        parent = ".".join(parts[:-1])
        siblings = _list_at(journey, parent)
        if index < len(siblings):
            return ".".join([*parts[:-1], str(index)])
        parts = parts[:-2]  # leave the branch arm: continue after the branch step
    return None


def first_of(journey: Journey, arm_path: str) -> str | None:
    """Entering a branch arm (``"2.then"``): its first step, or what follows the branch if it is empty."""
    if _list_at(journey, arm_path):
        return f"{arm_path}.0"
    return after(journey, arm_path.rsplit(".", 1)[0])


def _list_at(journey: Journey, parent: str) -> list[Any]:
    if not parent:
        return list(journey.steps)
    branch_path, arm = parent.rsplit(".", 1)
    step = step_at(journey, branch_path)
    assert isinstance(step, BranchStep)
    return list(step.branch.then if arm == "then" else step.branch.else_)


def step_id(step: Any, path: str) -> str:
    """What names a step in outbox keys: its ``id`` when given (stable across edits), else its path."""
    return getattr(step, "id", None) or path
