"""The assembly domain's HTTP inputs and answers: policies, theme, artifacts, reviews and download links."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from offerloop.core.pages import Page

BlockKey = Annotated[str, StringConstraints(min_length=3, max_length=200)]
EditText = Annotated[str, StringConstraints(max_length=200_000)]


class PolicyText(BaseModel):
    text: str = Field(description="The composition policy in YAML")
    triggers: list[dict[str, Any]] = Field(
        default_factory=list, description='Events that generate it, e.g. [{"event": "Quiz Completed"}]'
    )


class ArtifactRequest(BaseModel):
    user_id: str | None = None
    anonymous_id: str | None = None
    buyer_id: str | None = None
    policy: str
    quiz: str | None = None
    offer_value_minor: int | None = Field(default=None, ge=0, description="For review rules on offer value")
    ranking: Literal["bm25", "semantic"] = Field(
        default="bm25", description="Relevance ranking: BM25, or embeddings (needs the `semantic` extra)"
    )

    @model_validator(mode="after")
    def _one_buyer(self) -> ArtifactRequest:
        if sum(x is not None for x in (self.user_id, self.anonymous_id, self.buyer_id)) != 1:
            raise ValueError("give exactly one of user_id, anonymous_id, buyer_id")
        return self


class ReviewIn(BaseModel):
    action: Literal["approve", "edit", "reject"]
    reviewer: str = Field(min_length=1, max_length=200, pattern=r"\S")
    note: str | None = Field(default=None, max_length=10_000)
    edits: dict[BlockKey, EditText] | None = Field(
        default=None, max_length=500, description='{"<section key>/<block index>": "markdown"}'
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="The version reviewed; refused (409) if no longer current",
    )


class LintFinding(BaseModel):
    severity: str = Field(description="error or warning")
    location: str
    message: str
    line: int | None


class PolicyStored(BaseModel):
    id: str
    version: str
    triggers: list[dict[str, Any]]
    findings: list[LintFinding]


class PolicyRead(BaseModel):
    id: str
    version: str
    triggers: list[dict[str, Any]]
    created_at: datetime


class PolicyPage(Page[PolicyRead]):
    """The workspace's current composition policies, by id."""


class ThemeRead(BaseModel):
    version: int
    name: str
    primary: str
    accent: str
    text: str
    body_font: str
    heading_font: str
    mono_font: str
    logo_svg: str | None
    creator_name: str | None


class OutlineSection(BaseModel):
    key: str
    title: str
    blocks: list[str] = Field(description="The titles of the section's blocks")


class ArtifactSummary(BaseModel):
    id: str
    version: int
    status: str = Field(
        description="queued, rendering, ready, awaiting_review, rejected, failed or superseded"
    )
    policy: str
    buyer_id: str
    title: str
    outline: list[OutlineSection]
    preview_html: str | None = Field(description="The first section, rendered at once")


class ArtifactReview(BaseModel):
    reason: str | None
    reasons: list[str]
    reviewer: str | None
    note: str | None
    outcome: str | None = Field(description="approved, edited or rejected; null if no human reviewed it")
    reviewed_at: datetime | None


class ArtifactFileRead(BaseModel):
    format: str
    media_type: str
    size: int
    sha256: str
    pages: int | None


class ArtifactVersionRead(BaseModel):
    version: int
    status: str
    changelog: str | None
    reviewer: str | None
    review_outcome: str | None
    created_at: datetime


class ArtifactRead(ArtifactSummary):
    """Status, provenance, files and versions of an artifact."""

    error: str | None
    review: ArtifactReview
    provenance: dict[str, Any] = Field(description="Policy, atoms (id and version), inputs and the reviewer")
    files: list[ArtifactFileRead]
    downloadable_version: int | None = Field(description="What a buyer gets: the latest deliverable version")
    versions: list[ArtifactVersionRead]


class DownloadLink(BaseModel):
    url: str = Field(description="Relative to the server; no key needed until it expires")
    expires: int = Field(description="Unix time")
    version: int
    format: str


class ReviewBuyer(BaseModel):
    id: str
    user_id: str | None
    identifiers: list[dict[str, str]]
    name: str | None
    erased: bool


class PolicyRef(BaseModel):
    id: str
    version: str | None


class ReviewItem(BaseModel):
    """An artifact version waiting for a human."""

    artifact_id: str
    version: int
    status: str
    reason: str | None
    reasons: list[str]
    buyer: ReviewBuyer
    policy: PolicyRef
    changelog: str | None
    regenerated_after_review: int | None = Field(
        description="The reviewed version this one was regenerated after"
    )
    diff: dict[str, Any] | None = Field(description="What changed since the last reviewed version")
    edits: dict[str, Any] = Field(description="Reviewer edits in effect, and those not carried")
    created_at: datetime


class ReviewPage(Page[ReviewItem]):
    """Versions waiting for review, oldest first."""


class ReviewVersion(BaseModel):
    version: int
    status: str
    review_outcome: str | None
    reviewer: str | None
    note: str | None
    changelog: str | None


class ReviewDetail(ReviewItem):
    """What a reviewer decides on."""

    document: dict[str, Any] = Field(description="Every block with its text, provenance and guard verdict")
    html: str | None
    preview_url: str | None = Field(description="A signed reviewer-only link to the rendered HTML")
    provenance: dict[str, Any]
    versions: list[ReviewVersion]


class Reviewed(BaseModel):
    id: str
    version: int
    status: str


class AtomUseRead(BaseModel):
    id: str
    used: str = Field(description="The atom version the artifact was built from")
    current: str = Field(description="The atom's current version")


class AffectedArtifact(BaseModel):
    artifact_id: str
    version: int
    atoms: list[AtomUseRead]


class AffectedPage(Page[AffectedArtifact]):
    """Artifacts built from an earlier version of an atom, by artifact id."""


class RegeneratedRef(BaseModel):
    id: str
    version: int


class Regenerated(BaseModel):
    regenerated: list[RegeneratedRef]
