from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from offerloop.core.pages import Page

KeyKind = Literal["write", "secret"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the workspace, the key and what that key may do."""

    workspace_id: str
    key_id: str
    kind: str

    @property
    def is_secret(self) -> bool:
        return self.kind == "secret"


class WorkspaceCreated(BaseModel):
    id: str
    name: str
    write_key: str
    secret_key: str


class KeyCreate(BaseModel):
    kind: KeyKind
    name: str = Field(default="", max_length=200)


class KeyRead(BaseModel):
    id: str
    kind: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyRead):
    key: str = Field(description="The full key. Shown once; only its hash is stored.")


class KeyPage(Page[KeyRead]):
    """The workspace's keys, oldest first (revoked ones too)."""
