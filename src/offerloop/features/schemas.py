"""The features domain's HTTP answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FeatureSpecRead(BaseModel):
    version: int = Field(description="0: the built-in defaults")
    spec: dict[str, Any] = Field(description="The feature definitions, as accepted by PUT /v1/features/spec")


class FeatureSpecStored(BaseModel):
    version: int = Field(description="The new version of the workspace's feature definitions")
