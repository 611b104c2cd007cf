"""Every repository statement on a workspace-owned table is scoped by its workspace.

The rule is checked on the source of every ``src/offerloop/*/repository.py`` with ``ast``, so an unscoped
query fails this test the moment it is written, whether or not any other test reaches it:

- no bare ``select``/``update``/``delete``/``session.get``/``session.query``: statements start from
  ``db.scoped.scoped_select/scoped_update/scoped_delete(Model, workspace_id)``, whose second argument is
  the function's own ``workspace_id`` parameter;
- every workspace-owned model a function names (in a join, a subquery, an ``IN``) is either the base of a
  scoped statement or compared on its ``workspace_id`` column;
- raw SQL (the driver-level hot paths) names ``workspace_id`` once for every workspace-owned table it reads
  or writes, in a function that takes ``workspace_id``.

A few background queries are cross-workspace by nature; they are listed in ALLOWED with the reason, and each
returns rows whose own ``workspace_id`` the caller then uses.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

import offerloop
from offerloop.db.base import Base
from offerloop.db.scoped import scoped_delete, scoped_select, scoped_update
from offerloop.db.uow import Database
from offerloop.models import Action

NOW = datetime(2026, 12, 4, tzinfo=UTC)
SRC = Path(offerloop.__file__).parent
REPOSITORIES = sorted([*SRC.glob("*/repository.py"), *SRC.glob("*/*_repository.py")])
SCOPED = {"scoped_select", "scoped_update", "scoped_delete"}
BARE = {"select", "update", "delete", "insert"}
# insert is allowed (a row carries its own workspace_id); only reads and writes of existing rows are scoped
READ_WRITE = BARE - {"insert"}

# Cross-workspace by nature: "module.function" -> why. Keep this short; each entry is a reviewed decision.
ALLOWED: dict[str, str] = {
    "workspaces.get_workspace": "the workspaces table itself, read by its own id",
    "workspaces.list_workspaces": "the operator's CLI lists every tenant",
    "workspaces.set_versioned": "the workspaces table itself, written by its own id",
    "workspaces.key_by_hash": "authentication: the key's hash is what tells which workspace a request is for",
    "console.users_by_email": "console sign-in: the e-mail and password are what tell which workspace it is for",
    "console.session_with_user": "console authentication: the session token's hash tells which workspace; the "
    "row must also match its user's workspace",
    "subscriptions.unscheduled": "due-work sweep over every tenant; each row carries its workspace_id",
    "checkout.unscheduled_holds": "due-work sweep over every tenant; each hold carries its workspace_id",
    "reports.prune": "the hourly sweep of unused report snapshots over every tenant (by age only); each row "
    "carries its workspace_id",
    "delivery.live_journeys": "the journey clock's sweep over every tenant; each version carries its workspace_id",
    "checkout.payment_event": "webhook dedup by the provider's globally unique event id, before the "
    "workspace is known (it comes from the matched order's own workspace_id)",
    "identity.rows_for_erasure": "GDPR erasure over every store, one model at a time: always limited to the "
    "workspace, and for payment events also to webhooks never matched to any workspace (which may carry the "
    "erased buyer's e-mail in their payload)",
    "workspaces.server_secret": "the per-database link-signing secret: a server-wide row, no workspace",
    "assembly.artifact_for_signed_link": "the unauthenticated file route: the link's HMAC over the artifact id "
    "is the authority; the version and file are then read in the artifact's own workspace",
    "checkout.order_for_webhook": "a verified provider webhook: scoped by the workspace in its metadata when "
    "it names one, else matched by our own order id or the provider's reference (globally unique); the "
    "order found carries the workspace every later step uses",
    "checkout.unmatched_payment_events": "webhooks that matched no order (often carrying no workspace), found "
    "again by the provider's globally unique payment reference once an order is paid by it; the caller skips "
    "any that name another workspace",
}


def _workspace_tables() -> dict[str, str]:
    """Mapped class name -> table name, for every table with a workspace_id column."""
    import offerloop.models  # noqa: F401  registers every table

    out = {}
    for mapper in Base.registry.mappers:
        table = mapper.local_table
        if "workspace_id" in table.c:
            out[mapper.class_.__name__] = str(table.name)
    return out


OWNED = _workspace_tables()
OWNED_TABLES = set(OWNED.values())
SQL_TABLE = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)", re.IGNORECASE)


def _strings(node: ast.AST) -> str:
    parts = []
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            parts.append(n.value)
    return " ".join(parts)


def _check_function(fn: ast.FunctionDef) -> list[str]:
    params = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
    problems: list[str] = []
    scoped_models: set[str] = set()
    statements = False
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if isinstance(func, ast.Name) and name in READ_WRITE:
            statements = True
            problems.append(f"line {node.lineno}: bare {name}() (start from db.scoped.scoped_{name})")
        elif isinstance(func, ast.Attribute) and name in READ_WRITE and isinstance(func.value, ast.Name):
            if func.value.id in {"sa", "sqlalchemy"}:
                statements = True
                problems.append(f"line {node.lineno}: bare {func.value.id}.{name}()")
        elif (
            isinstance(func, ast.Attribute)
            and name in {"get", "get_one", "query", "merge"}
            and isinstance(func.value, ast.Name)
            and func.value.id == "session"
        ):
            statements = True
            problems.append(f"line {node.lineno}: session.{name}() reads by id without the workspace")
        if name in SCOPED:
            statements = True
            if len(node.args) < 2:
                problems.append(f"line {node.lineno}: {name}() without a workspace id")
                continue
            model, ws = node.args[0], node.args[1]
            if not (isinstance(ws, ast.Name) and ws.id == "workspace_id" and "workspace_id" in params):
                problems.append(
                    f"line {node.lineno}: {name}() not given the function's workspace_id parameter"
                )
            if isinstance(model, ast.Name):
                scoped_models.add(model.id)
    compared = {
        n.value.id
        for n in ast.walk(fn)
        if isinstance(n, ast.Attribute) and n.attr == "workspace_id" and isinstance(n.value, ast.Name)
    }
    named = {
        n.value.id
        for n in ast.walk(fn)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in OWNED
    }
    if statements:
        for model in sorted(named - scoped_models - compared):
            problems.append(f"{model} is used but neither scoped nor compared on its workspace_id")
    sql = _strings(fn)
    tables = [t for t in SQL_TABLE.findall(sql) if t in OWNED_TABLES]
    if tables and not sql.upper().startswith("INSERT") and "insert_many" not in ast.unparse(fn):
        if "workspace_id" not in params:
            problems.append(
                f"raw SQL on {sorted(set(tables))} in a function without a workspace_id parameter"
            )
        elif sql.count("workspace_id") < len(tables):
            problems.append(
                f"raw SQL names {len(tables)} workspace tables but workspace_id only {sql.count('workspace_id')} times"
            )
    return problems


def _findings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path in REPOSITORIES:
        module = path.parent.name
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                problems = _check_function(node)
                if problems:
                    out[f"{module}.{node.name}"] = problems
            elif problems := _check_module_statement(node):
                out[f"{module}:{node.lineno}"] = problems
    return out


def _check_module_statement(node: ast.stmt) -> list[str]:
    """A statement prebuilt at import time (a hot path's cached SELECT) compares each workspace-owned
    model it names on its workspace_id column, to a bound parameter the caller fills."""
    calls = [
        n for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in READ_WRITE | SCOPED
    ]  # fmt: skip
    if not calls:
        return []
    named = {
        n.value.id for n in ast.walk(node) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
    compared = {
        n.value.id
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute) and n.attr == "workspace_id" and isinstance(n.value, ast.Name)
    }
    return [
        f"{m} is used but not compared on its workspace_id" for m in sorted((named & set(OWNED)) - compared)
    ]


def test_every_repository_statement_is_scoped_by_workspace():
    findings = {k: v for k, v in _findings().items() if k not in ALLOWED}
    report = "\n".join(f"{name}: {'; '.join(problems)}" for name, problems in sorted(findings.items()))
    assert findings == {}, f"unscoped repository functions:\n{report}"


def test_the_allow_list_names_only_functions_that_need_it():
    """A stale entry would silently excuse whatever function later takes the name."""
    findings = _findings()
    assert sorted(name for name in ALLOWED if name not in findings) == []


def test_the_checker_catches_unscoped_statements():
    bad = """
def by_id(session, order_id):
    return session.get(Order, order_id)

def lines(session, workspace_id, buyer_id):
    return select(Order.lines).where(Order.buyer_id == buyer_id)

def other(session, workspace_id, tenant):
    return scoped_select(Order, tenant)

def joined(session, workspace_id):
    return scoped_select(AtomUse, workspace_id).join(Artifact, Artifact.id == AtomUse.artifact_id)

def raw(session, buyer_id):
    return driver.fetch_all(session.connection(), "SELECT id FROM touchpoints WHERE buyer_id = ?", [buyer_id])

CACHED = select(Entitlement.id).where(Entitlement.buyer_id == bindparam("b"))

def raw_join(session, workspace_id):
    return driver.fetch_all(session.connection(), "SELECT 1 FROM identities i JOIN buyers b ON b.id = i.buyer_id "
                            "WHERE i.workspace_id = ?", [workspace_id])

def fine(session, workspace_id, buyer_id):
    return scoped_select(Order, workspace_id).where(Order.buyer_id == buyer_id)
"""
    tree = ast.parse(bad)
    results = {fn.name: _check_function(fn) for fn in tree.body if isinstance(fn, ast.FunctionDef)}
    results["CACHED"] = next(_check_module_statement(n) for n in tree.body if isinstance(n, ast.Assign))
    assert {name: bool(problems) for name, problems in results.items()} == {
        "by_id": True,
        "lines": True,
        "other": True,
        "joined": True,
        "raw": True,
        "raw_join": True,
        "CACHED": True,
        "fine": False,
    }


def test_scoped_statements_see_only_their_workspace(db: Database, workspace, other_workspace):
    with db.write() as session:
        for ws in (workspace, other_workspace):
            session.add(
                Action(
                    id=f"act_{ws.id}",
                    workspace_id=ws.id,
                    key="same-key",
                    kind="offer",
                    title="t",
                    attributes={},
                    outcome={},
                    priority=0,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    with db.write() as session:
        mine = session.scalars(scoped_select(Action, workspace.id).where(Action.key == "same-key")).all()
        assert [a.workspace_id for a in mine] == [workspace.id]
        counted = session.scalar(scoped_select(Action, workspace.id, func.count()))
        assert counted == 1
        session.execute(
            scoped_update(Action, workspace.id).where(Action.key == "same-key").values(priority=7)
        )
        session.execute(scoped_delete(Action, other_workspace.id).where(Action.key == "nothing"))
    with db.read() as session:
        rows = session.execute(select(Action.workspace_id, Action.priority).where(Action.key == "same-key"))
        assert sorted(rows.all(), key=lambda r: r[0] == workspace.id) == [
            (other_workspace.id, 0),
            (workspace.id, 7),
        ]


@pytest.mark.parametrize("bad", ["", None])
def test_a_missing_workspace_id_is_refused(bad):
    with pytest.raises(ValueError, match="needs a workspace id"):
        scoped_select(Action, bad)  # type: ignore[arg-type]
