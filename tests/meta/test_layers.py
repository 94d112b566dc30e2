"""The layer rule holds: import-linter runs the contracts in pyproject.toml over the code base.

channels/ at the bottom, app/core the kernel, tenants/ on the kernel only, the rest of app/ on top.
The same contracts are also run over small made-up trees, each breaking the rule in one way, so a
contract that no longer catches what it is for fails here too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = {
    c["id"]: c["name"]
    for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}


def _lint(where: Path, config: Path) -> subprocess.CompletedProcess[str]:
    # cwd and PYTHONPATH both at `where`: grimp finds the root packages there and nowhere else.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)],
        cwd=where,
        env={**os.environ, "PYTHONPATH": str(where)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _broken(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {cid for cid, name in CONTRACTS.items() if f"{name} BROKEN" in result.stdout}


def test_the_code_base_keeps_every_layer_contract():
    result = _lint(ROOT, ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(CONTRACTS) == {"channels", "kernel", "tenants"}
    for name in CONTRACTS.values():
        assert f"{name} KEPT" in result.stdout, result.stdout


# A tree that keeps the rule: each layer imports only what sits below it.
CLEAN = {
    "channels/__init__.py": "",
    "channels/base.py": "",
    "channels/media.py": "",
    "app/__init__.py": "",
    "app/core/__init__.py": "",
    # channels.media, not channels.base: the breaks below in channels.base would reach further through it.
    "app/core/db.py": "import channels.media\n",
    "app/notify/__init__.py": "",
    "app/notify/models.py": "import app.core.db\nimport tenants.contacts.service\n",
    "app/people/__init__.py": "",  # a child of app/ that no contract names: covered by app.*
    "tenants/__init__.py": "",
    "tenants/contacts/__init__.py": "",
    "tenants/contacts/service.py": "from app.core import db\nimport channels.media\n",
}
# Each case: one file rewritten to break the rule, and the one contract that must catch it.
BREAKS = {
    "channels importing the kernel": ("channels/base.py", "from app.core import db\n", "channels"),
    "channels importing tenants": ("channels/base.py", "import tenants.contacts.service\n", "channels"),
    "the kernel importing tenants": ("app/core/db.py", "import tenants.contacts.service\n", "kernel"),
    # Lazily, and into a child of app/ added after the contract was written.
    "the kernel importing the rest of app lazily": (
        "app/core/db.py",
        "def f():\n    from app.people import __name__\n",
        "kernel",
    ),
    "tenants importing the notify models lazily": (
        "tenants/contacts/service.py",
        "from app.core import db\n\n\ndef merge():\n    from app.notify.models import __name__\n",
        "tenants",
    ),
}


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    config = tmp_path / "pyproject.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())  # lint-imports reads only [tool.importlinter]
    return config


def test_the_contracts_pass_a_tree_that_keeps_the_rule(tmp_path):
    result = _lint(tmp_path, _tree(tmp_path, CLEAN))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Analyzed 12 files" in result.stdout, result.stdout  # the made-up tree, not the real one


@pytest.mark.parametrize("case", BREAKS)
def test_a_contract_catches_each_way_of_breaking_the_rule(tmp_path, case):
    path, text, contract = BREAKS[case]
    result = _lint(tmp_path, _tree(tmp_path, {**CLEAN, path: text}))
    assert result.returncode == 1, result.stdout + result.stderr
    assert _broken(result) == {contract}, result.stdout
