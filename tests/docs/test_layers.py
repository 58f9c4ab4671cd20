"""Layers point one way: kernels <- models <- server; protobuf and gRPC only at the edge.

Every module's imports are parsed (absolute and relative alike), so a wrong import
fails here before it can form a cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: a module's layer, by the import path it lives under (longest prefix wins)
LAYERS = {"attribid.kernels": 0, "attribid.models": 1, "attribid": 2}
#: the only modules that may speak protobuf or gRPC: the API edge, the client, the runtime
#: that owns the grpc.aio server, and the generated stubs themselves
EDGE = ("attribid.api", "attribid.client", "attribid.runtime.server", "attribid.v1",
        "attribid.cli.score")
WIRE = ("grpc", "grpc_health", "grpc_reflection", "grpc_status", "google.protobuf",
        "google.rpc", "attribid.v1")


def modules() -> dict[str, Path]:
    found = {}
    for root in ("server", "kernels", "models"):
        for path in (ROOT / root).rglob("*.py"):
            rel = path.relative_to(ROOT / root).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names imported from it) for every import in the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            out.append((node.lineno, base, [a.name for a in node.names]))
    return out


def layer(module: str) -> int | None:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    return None


def under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(found: dict[str, Path]) -> list[str]:
    bad = []
    for name, path in sorted(found.items()):
        own = layer(name)
        for line, target, names in imports(name, path):
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"
            theirs = layer(target)
            if own is not None and theirs is not None and theirs > own:
                bad.append(f"{where}: {name} (layer {own}) imports {target} (layer {theirs})")
            if under(target, WIRE) and not under(name, EDGE):
                bad.append(f"{where}: {name} imports {target}, which belongs at the API edge")
            if target.startswith("attribid") and target != name:
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private:
                    bad.append(f"{where}: {name} imports private {private} from {target}")
    return bad


def test_every_module_imports_only_downwards_and_the_wire_only_at_the_edge() -> None:
    found = modules()
    assert len(found) > 50
    assert violations(found) == []


def test_the_check_catches_a_wrong_import(tmp_path: Path) -> None:
    """A kernel that imports the server, relatively, and a core module reading protobuf."""
    kernel = tmp_path / "bad_kernel.py"
    kernel.write_text("from ...runtime import settings\nfrom ..featurize import _featurize\n")
    core = tmp_path / "bad_core.py"
    core.write_text("from attribid.v1 import attribution_pb2 as pb\n")
    found = {"attribid.kernels.sub.bad_kernel": kernel, "attribid.core.bad_core": core}
    bad = "\n".join(violations(found))
    assert bad.count("\n") == 2, bad
    assert "bad_kernel.py:1: attribid.kernels.sub.bad_kernel (layer 0) imports attribid.runtime" in bad
    assert "bad_kernel.py:2: attribid.kernels.sub.bad_kernel imports private ['_featurize']" in bad
    assert "bad_core.py:1: attribid.core.bad_core imports attribid.v1, which belongs at" in bad
