"""Tenant scoping stays in one place, and no `assert` guards product code (python -O strips it).

A hand-written tenant filter is a comparison with a `tenant_id` attribute on either side
(`Model.tenant_id == x`, `table.c.tenant_id == x`). Allowed only in the scoped repository base
(app/core/repository.py: `owned_by`, `TenantRepository.statement`) and the one hot-path SQL module
(app/notify/lookups.py). Not filters, so not counted: a join's ON clause (`Tenant.id == X.tenant_id`)
and a comparison used as a Python boolean (an `if`, a comprehension's `if`), which a SQL expression
cannot be.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("app", "tenants", "channels")
ALLOWED = {"app/core/repository.py", "app/notify/lookups.py"}
# Files other work owns at the moment, with what they still hold: never more, and each is to reach 0
# (then its entry goes). Lower a number when you remove some.
PENDING_FILTERS: dict[str, int] = {}
PENDING_ASSERTS: dict[str, int] = {}


def _is_tenant_id(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "tenant_id"


def _eq_on_tenant_id(node: ast.Compare) -> bool:
    return any(isinstance(op, ast.Eq) for op in node.ops) and any(
        _is_tenant_id(side) for side in (node.left, *node.comparators)
    )


def _not_filters(tree: ast.AST) -> set[int]:
    """ids of Compare nodes that cannot be SQL filters: join conditions and Python-side tests."""
    skip: set[int] = set()

    def mark(node: ast.AST) -> None:
        skip.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Compare))

    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("join", "outerjoin")
        ):
            for arg in node.args[1:]:
                mark(arg)
        elif isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            mark(node.test)
        elif isinstance(node, ast.comprehension):
            for test in node.ifs:
                mark(test)
    return skip


def findings(source: str) -> tuple[list[int], list[int]]:
    """(lines with a hand-written tenant filter, lines with an assert statement)."""
    tree = ast.parse(source)
    skip = _not_filters(tree)
    filters, asserts = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            asserts.append(node.lineno)
        elif isinstance(node, ast.Compare) and id(node) not in skip and _eq_on_tenant_id(node):
            filters.append(node.lineno)
    return sorted(filters), sorted(asserts)


def _product_files() -> list[Path]:
    return sorted(p for top in PRODUCT for p in (ROOT / top).rglob("*.py"))


def _scan() -> tuple[Counter[str], Counter[str], list[str]]:
    filters: Counter[str] = Counter()
    asserts: Counter[str] = Counter()
    where: list[str] = []
    for path in _product_files():
        rel = path.relative_to(ROOT).as_posix()
        found_filters, found_asserts = findings(path.read_text())
        if rel not in ALLOWED:
            filters[rel] += len(found_filters)
            where += [f"{rel}:{line}: hand-written tenant filter" for line in found_filters]
        asserts[rel] += len(found_asserts)
        where += [f"{rel}:{line}: assert" for line in found_asserts]
    return filters, asserts, where


def test_no_hand_written_tenant_filter_outside_the_scoped_modules() -> None:
    filters, _, where = _scan()
    over = {f: n for f, n in filters.items() if n > PENDING_FILTERS.get(f, 0)}
    assert not over, (
        "tenant-owned reads go through app/core/repository.py (a TenantRepository, `repository()`, `owned_by`) "
        "or app/notify/lookups.py:\n" + "\n".join(w for w in where if w.endswith("filter") and w.split(":")[0] in over)
    )


def test_no_assert_in_product_code() -> None:
    _, asserts, where = _scan()
    over = {f: n for f, n in asserts.items() if n > PENDING_ASSERTS.get(f, 0)}
    assert not over, "raise a real error, or handle the case; `python -O` strips asserts:\n" + "\n".join(
        w for w in where if w.endswith("assert") and w.split(":")[0] in over
    )


def test_the_check_sees_what_it_is_for() -> None:
    source = """
stmt = select(Attempt).where(Attempt.tenant_id == tenant_id, Attempt.id == ref)
upsert = stmt.on_conflict_do_update(where=(_TABLE.c.tenant_id == tenant_id))
scope = (IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key)
joined = select(A).join(Tenant, Tenant.id == A.tenant_id)
mine = [e for e in entries if e.tenant_id == tenant_id]
if row.tenant_id == other:
    pass
assert n is not None
"""
    filters, asserts = findings(source)
    assert filters == [2, 3, 4] and asserts == [9]


def test_pending_entries_name_real_files() -> None:
    for rel in (*PENDING_FILTERS, *PENDING_ASSERTS, *ALLOWED):
        assert (ROOT / rel).is_file(), f"{rel} is gone: drop its entry"
