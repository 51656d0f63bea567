"""The import direction of DESIGN.md: ir <- backends; ir <- placer. Enforced on the source."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(folder: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add((str(path.relative_to(ROOT)), node.module))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    found.add((str(path.relative_to(ROOT)), alias.name))
    return found


def test_ir_imports_nothing_else_of_placer():
    bad = [(f, m) for f, m in _imports("ir") if m.startswith("placer") and not m.startswith("placer.ir")]
    assert not bad, bad


def test_backends_import_only_ir():
    bad = [(f, m) for f, m in _imports("backends")
           if m.startswith("placer") and not (m.startswith("placer.ir") or m.startswith("placer.backends"))]
    assert not bad, bad


def test_every_package_folder_is_listed_in_pyproject():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    mapping = {"placer": "placer", "ir": "placer.ir", "backends": "placer.backends"}
    for top, pkg in mapping.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            name = ".".join([pkg, *rel.parts]) if rel.parts else pkg
            assert name in listed, f"{name} ({init.parent}) is missing from [tool.setuptools] packages"
