"""Workspace-scoped base statements: the only way repositories start a SELECT, UPDATE or DELETE on a
workspace-owned table, so a query that forgets its tenant cannot be written by accident.

Every row belongs to a workspace and ids are not trusted to be globally unique: a statement built here
already carries ``Model.workspace_id == workspace_id``; the caller adds its own conditions with
``.where(...)``. tests/db/test_scoping.py fails on any repository statement that does not start here
(outside a short, documented allow-list of cross-workspace background queries).
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from sqlalchemy import Delete, Select, Update, delete, select, update


def _owner(model: Any, workspace_id: str) -> Any:
    if not workspace_id:
        # An empty id would match nothing and hide the caller's bug; None would compile to IS NULL.
        raise ValueError(f"a query on {getattr(model, '__name__', model)!r} needs a workspace id")
    return model.workspace_id == workspace_id


T = TypeVar("T")


@overload
def scoped_select(model: type[T], workspace_id: str) -> Select[T]: ...
@overload
def scoped_select(model: Any, workspace_id: str, *columns: Any) -> Select[Any]: ...
def scoped_select(model: Any, workspace_id: str, *columns: Any) -> Select[Any]:
    """``SELECT columns (default: the entity) FROM model WHERE model.workspace_id = workspace_id``."""
    stmt: Select[Any] = select(*columns).select_from(model) if columns else select(model)
    return stmt.where(_owner(model, workspace_id))


def scoped_update(model: Any, workspace_id: str) -> Update:
    """``UPDATE model ... WHERE model.workspace_id = workspace_id`` (add ``.where``/``.values``)."""
    return update(model).where(_owner(model, workspace_id))


def scoped_delete(model: Any, workspace_id: str) -> Delete:
    """``DELETE FROM model WHERE model.workspace_id = workspace_id`` (add ``.where``)."""
    return delete(model).where(_owner(model, workspace_id))


def newest_first(
    model: Any, workspace_id: str, *, limit: int, before_id: str | None, **equal: Any
) -> Select[Any]:
    """One page of a workspace's ``model`` rows, newest id first, below ``before_id`` (the cursor), where
    each given ``column=value`` holds (a None value filters nothing)."""
    stmt = scoped_select(model, workspace_id)
    if before_id is not None:
        stmt = stmt.where(model.id < before_id)
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(getattr(model, column) == value)
    return stmt.order_by(model.id.desc()).limit(limit)
