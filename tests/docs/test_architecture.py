"""Every file:function hop that docs/ARCHITECTURE.md names exists."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOP = re.compile(r"`((?:server|kernels|models)/[\w/]+\.py):([\w.]+)`")


def defined_names(path: Path) -> set[str]:
    """Dotted names of the classes, functions and methods a module defines."""
    names: set[str] = set()

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(prefix + child.name)
                visit(child, prefix + child.name + ".")

    visit(ast.parse(path.read_text()), "")
    return names


def test_every_hop_names_a_real_function() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    hops = HOP.findall(text)
    assert len(hops) >= 9
    missing = [f"{file}:{name}" for file, name in hops
               if not (ROOT / file).is_file() or name not in defined_names(ROOT / file)]
    assert missing == []
