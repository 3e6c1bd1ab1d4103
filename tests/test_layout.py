"""The shape of the product, read from its imports: a flwr-free core, thin apps, the lab outside, no cycles."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("reid_core", "server_app", "client_app", "fedureid")


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


PRODUCT_MODULES = {name: path for p in PRODUCT for name, path in _modules(p).items()}


def _imports_of(prefix: str) -> dict[str, set[str]]:
    return {m: _imports(p) for m, p in PRODUCT_MODULES.items() if m == prefix or m.startswith(prefix + ".")}


def _uses(imported: set[str], package: str) -> bool:
    return any(i == package or i.startswith(package + ".") for i in imported)


def test_the_product_never_imports_the_lab():
    assert sorted(m for m, p in PRODUCT_MODULES.items() if _uses(_imports(p), "lab")) == []


def test_the_core_never_imports_flwr_and_the_apps_never_import_each_other():
    assert sorted(m for m, imp in _imports_of("reid_core").items() if _uses(imp, "flwr")) == []
    assert sorted(m for m, imp in _imports_of("client_app").items() if _uses(imp, "server_app")) == []
    assert sorted(m for m, imp in _imports_of("server_app").items() if _uses(imp, "client_app")) == []


def test_the_client_app_answers_a_name_query_without_importing_torch():
    """Every message starts a ClientApp process; the query for a node's name must not pay torch's import."""
    code = "import sys, client_app.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_no_import_cycles_in_the_product():
    graph = {m: {i for i in _imports(p) if i in PRODUCT_MODULES and i != m} for m, p in PRODUCT_MODULES.items()}
    for module in graph:  # a package's __init__ is not an import of its own submodules' edges
        graph[module] = {i for i in graph[module] if not module.startswith(i + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_wheel_packages_the_product_only():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert sorted(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]) == sorted(PRODUCT)


def test_the_lab_commands_say_they_need_a_checkout_when_the_lab_is_absent(tmp_path):
    """An installed product without lab/: `fedureid ablation` exits 2 with a clear message."""
    code = ("import sys; sys.modules['lab'] = None\n"
            "from fedureid.cli import main\n"
            "raise SystemExit(main(['ablation']))")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "developer checkout" in res.stderr


@pytest.mark.parametrize("function", ["weighted_average", "interpolate", "train_round", "round_line"])
def test_each_piece_of_the_round_is_defined_once(function):
    pattern = re.compile(rf"^\s*def {function}\(", re.M)
    found = [m for m, p in PRODUCT_MODULES.items() if pattern.search(p.read_text())]
    assert len(found) == 1, found


def test_the_tree_speaks_of_the_project_only():
    """No text about how the project was developed (work sessions, borrowed machines, issue numbers)."""
    words = re.compile("|".join(["sess" + r"ion [0-9]", "len" + "t ", "iss" + r"ue #?[0-9]"]), re.I)
    suffixes = {".py", ".md", ".yaml", ".yml", ".sh", ".toml"}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    hits = [f"{name}:{i + 1}" for name in tracked if Path(name).suffix in suffixes and (REPO / name).exists()
            for i, line in enumerate((REPO / name).read_text(errors="replace").splitlines()) if words.search(line)]
    assert hits == []
