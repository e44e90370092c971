"""The house rules that the linters do not check: no module reaches into another's private
names, and a module's name says one thing across the layers.

Both parse the source with ``ast`` (nothing is imported); each checker is tested on a snippet so
a blind spot shows up as a failure here rather than as a silent pass.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ispbill"
# Layers whose module names must be unique among themselves: "billing" in the domain and in the
# use cases must not mean two different things. Entry points are named after the resource they
# expose (api/routes/payments.py, cli/payments.py, web/console/payments.py) and are exempt.
NAMED_LAYERS = ("domain", "use_cases", "adapters")
# Names that every package has and that say nothing of a subject.
GENERIC = frozenset({"__init__"})


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def private_imports(source: str, module: str) -> list[str]:
    """``from other import _name`` and ``other._name`` for an imported project module."""
    tree = ast.parse(source)
    found: list[str] = []
    imported_modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("ispbill") or node.module == module:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{node.lineno}: {node.module}.{alias.name}")
                else:
                    imported_modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ispbill") and alias.asname:
                    imported_modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported_modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.lineno}: {imported_modules[node.value.id]}.{node.attr}")
    return found


def test_private_import_checker_sees_both_forms() -> None:
    source = (
        "from ispbill.use_cases.billing import plan_changes\n"
        "from ispbill.use_cases.billing.plan_changes import _charge, public\n"
        "from ispbill.domain.money import Money as _Money\n"
        "x = plan_changes._as_line\n"
        "y = public.__doc__\n"
    )
    assert private_imports(source, "ispbill.x") == [
        "2: ispbill.use_cases.billing.plan_changes._charge",
        "4: ispbill.use_cases.billing.plan_changes._as_line",
    ]


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = _module_name(path)
        found += [f"{module}:{hit}" for hit in private_imports(path.read_text(), module)]
    assert found == []


def duplicate_names(paths: list[Path]) -> dict[str, list[str]]:
    seen: defaultdict[str, list[str]] = defaultdict(list)
    for path in paths:
        if path.stem not in GENERIC:
            seen[path.stem].append(str(path.relative_to(PACKAGE)))
    return {name: sorted(where) for name, where in seen.items() if len(where) > 1}


def test_duplicate_name_checker_sees_a_clash() -> None:
    paths = [PACKAGE / "domain/billing.py", PACKAGE / "use_cases/billing/billing.py"]
    assert duplicate_names(paths) == {
        "billing": ["domain/billing.py", "use_cases/billing/billing.py"]
    }


def test_module_names_are_unique_across_domain_use_cases_and_adapters() -> None:
    paths = [
        path
        for layer in NAMED_LAYERS
        for path in (PACKAGE / layer).rglob("*.py")
        if "migrations" not in path.parts
    ]
    assert duplicate_names(paths) == {}
