"""The package's shape: no import cycles, and the store depends on none of its users.

The import graph is read from the source (every ``import`` statement, at any depth,
including those inside functions), so a cycle hidden by a function-level import
still fails here. Importing ``a.b.c`` also runs ``a/__init__.py`` and
``a/b/__init__.py``, so those count as imported too, unless the importing module
is itself inside that package (then the package is already being imported).
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import newsletter

PACKAGE_DIR = Path(newsletter.__file__).resolve().parent


def _modules(package_dir: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__), for every .py file."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def _ancestors(module: str) -> set[str]:
    """``a.b.c`` -> {"a", "a.b", "a.b.c"}: what importing it runs."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _imported_names(tree: ast.AST, package: str) -> list[str]:
    """Every dotted name an import statement anywhere in ``tree`` may refer to."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from a import b` imports a, and a.b too when b is a module.
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (directly or by running an __init__)."""
    modules = _modules(package_dir)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        for target in _imported_names(ast.parse(path.read_text(encoding="utf-8")), package):
            while target and target not in modules:
                target = target.rpartition(".")[0]  # a name inside a module: the module
            if target:
                graph[name] |= _ancestors(target) - _ancestors(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (first module repeated at the end), or None."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph(PACKAGE_DIR))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


@pytest.mark.parametrize("files", [
    pytest.param({"pkg/__init__.py": "", "pkg/a.py": "from . import b\n",
                  "pkg/b.py": "def f():\n    from .a import x\n"}, id="function-level"),
    pytest.param({"pkg/__init__.py": "", "pkg/a.py": "from .sub.c import y\n",
                  "pkg/sub/__init__.py": "from ..a import z\n", "pkg/sub/c.py": ""},
                 id="through-a-package-init"),
    pytest.param({"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n",
                  "pkg/b.py": "from pkg import a\n"}, id="absolute"),
])
def test_the_check_finds_hidden_cycles(tmp_path: Path, files: dict[str, str]) -> None:
    assert find_cycle(import_graph(_write(tmp_path, files))) is not None


def test_the_check_accepts_a_package_importing_its_own_modules(tmp_path: Path) -> None:
    package = _write(tmp_path, {
        "pkg/__init__.py": "from .a import x\n", "pkg/a.py": "from .b import y\n",
        "pkg/b.py": "import os\n",
    })
    assert find_cycle(import_graph(package)) is None


@pytest.mark.parametrize("user", ["newsletter.cli", "newsletter.web", "newsletter.sync"])
def test_the_store_depends_on_none_of_its_users(user: str) -> None:
    graph = import_graph(PACKAGE_DIR)
    store = [name for name in graph if name.startswith("newsletter.store")]
    assert store
    for name in store:
        bad = {target for target in graph[name] if target == user or target.startswith(user + ".")}
        assert not bad, f"{name} imports {sorted(bad)}"


def test_cli_web_and_sync_never_import_each_other() -> None:
    graph = import_graph(PACKAGE_DIR)
    sides = ("newsletter.cli", "newsletter.web", "newsletter.sync")

    def side(name: str) -> str | None:
        return next((s for s in sides if name == s or name.startswith(s + ".")), None)

    crossing = sorted(
        (name, target) for name, targets in graph.items() for target in targets
        if side(name) and side(target) and side(name) != side(target)
        # the CLI's commands start the service and the sync: that is their job
        and not (side(name) == "newsletter.cli" and target in ("newsletter.web.app",
                                                              "newsletter.web",
                                                              "newsletter.sync"))
    )
    assert not crossing, crossing


# What each part of the package may import: docs/architecture.md's code map, enforced.
# A part is a top-level module or sub-package of newsletter; "newsletter" itself (the
# version) may be imported by anyone. The CLI is the outermost shell and may use all.
FOUNDATIONS = {"errors", "files", "emails", "retry", "tokens", "dbengine"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "files": set(),
    "emails": set(),
    "retry": set(),
    "gitsave": {"errors"},
    "tokens": {"errors"},
    "dbengine": {"errors"},
    "announce": set(),
    "config_tables": {"emails"},
    "config": {"errors", "config_tables"},
    "project": {"errors", "config"},
    "issue_yaml": {"errors"},
    "issue_model": {"errors", "issue_yaml"},
    "issue": {"errors", "issue_yaml", "issue_model"},
    "colours": set(),
    "markdown_format": set(),
    "personalization": set(),
    "mjml_html": set(),
    "template_filters": {"issue"},
    "templating": {"errors", "project", "colours", "markdown_format", "template_filters"},
    "render": {"config", "issue", "project", "personalization", "templating", "template_filters",
               "mjml_html"},
    "mime": {"config"},
    "pipeline": {"errors", "files", "issue", "mime", "project", "personalization", "render"},
    "preview": {"errors", "issue", "pipeline", "preflight", "project", "render"},
    "article": {"errors"},
    "issue_layout": set(),
    "issue_append": {"errors", "issue", "issue_layout"},
    "issue_editor": {"errors", "files", "article", "issue", "issue_yaml", "issue_append"},
    "issue_writer": {"errors", "files", "issue", "issue_layout"},
    "archive": {"errors", "files", "config", "issue", "project", "markdown_format",
                "template_filters", "templating"},
    "migrations": {"errors", "dbengine", "project"},
    "store": {"errors", "emails", "dbengine", "migrations", "project", "announce"},
    "delivery": FOUNDATIONS | {"config", "issue", "mime", "pipeline", "project", "render",
                               "config_tables", "personalization", "store", "preflight"},
    "preflight": {"errors", "files", "config", "project", "issue", "render", "colours", "mime",
                  "pipeline", "delivery"},
    "sync": {"errors", "retry", "project", "store", "delivery"},
    "web": {"errors", "retry", "tokens", "project", "templating", "store", "delivery", "studio"},
    "reports": FOUNDATIONS | {"config", "project", "issue", "store", "delivery", "render"},
    "studio": {"errors", "tokens", "project", "render", "personalization", "store", "delivery",
               "pipeline", "issue", "issue_editor", "issue_writer", "article", "config", "files",
               "preview", "emails", "gitsave", "preflight", "reports"},
    "dbcopy": {"errors", "dbengine", "migrations", "store", "delivery"},
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "newsletter"


def test_every_part_imports_only_what_the_code_map_allows() -> None:
    graph = import_graph(PACKAGE_DIR)
    unknown = sorted({_part(name) for name in graph} - set(ALLOWED)
                     - {"newsletter", "cli", "__main__"})
    assert not unknown, (
        f"new parts {unknown}: add them to ALLOWED here and to docs/architecture.md's code map"
    )
    wrong = sorted(
        (name, target) for name, targets in graph.items() for target in targets
        if _part(name) in ALLOWED and _part(target) not in (_part(name), "newsletter")
        and _part(target) not in ALLOWED[_part(name)]
        # Alembic loads env.py from its file while migrating, to read the models' tables.
        and not (name == "newsletter.migrations.env" and _part(target) == "store")
    )
    assert not wrong, "imports the code map does not allow: " + ", ".join(
        f"{a} -> {b}" for a, b in wrong
    )


def test_the_code_map_check_can_fail(tmp_path: Path) -> None:
    package = _write(tmp_path, {"pkg/__init__.py": "", "pkg/store/__init__.py": "",
                                "pkg/store/x.py": "from ..web import y\n",
                                "pkg/web/__init__.py": "", "pkg/web/y.py": ""})
    graph = import_graph(package)
    assert "pkg.web.y" in graph["pkg.store.x"]
    assert "web" not in ALLOWED["store"]


def test_migrations_form_one_numbered_chain() -> None:
    """Each revision follows the one numbered before it: one head, no branches."""
    import re

    versions = sorted((PACKAGE_DIR / "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    chain = []
    for path in versions:
        text = path.read_text(encoding="utf-8")
        revision = re.search(r'^revision = "(\d{4})"', text, re.M)
        down = re.search(r'^down_revision = (None|"(\d{4})")', text, re.M)
        assert revision and down, f"{path.name}: revision and down_revision not found"
        chain.append((path.name[:4], revision.group(1), down.group(2)))
    assert chain, "no migrations found"
    for index, (prefix, revision, down) in enumerate(chain):
        assert prefix == revision, f"{prefix}_*.py declares revision {revision}"
        expected = chain[index - 1][1] if index else None
        assert down == expected, f"revision {revision} follows {down}, expected {expected}"


def test_package_data_ships_every_file_that_is_not_python() -> None:
    """A wheel must carry the templates, static files and migrations the code reads."""
    import tomllib

    config = tomllib.loads((PACKAGE_DIR.parent / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["newsletter"]
    shipped = {path for pattern in patterns for path in PACKAGE_DIR.glob(pattern)}
    needed = {
        path for path in PACKAGE_DIR.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc")
        and "__pycache__" not in path.parts
    }
    assert needed, "no data files found"
    missing = sorted(str(path.relative_to(PACKAGE_DIR)) for path in needed - shipped)
    assert not missing, f"add these to [tool.setuptools.package-data]: {missing}"
