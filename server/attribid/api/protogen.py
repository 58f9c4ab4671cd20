"""Regenerate the gRPC stubs from protos/ (needs the dev extra: grpcio-tools).

``python -m attribid.api.protogen`` writes server/attribid/v1/attribution_pb2*.py; the
stubs are committed so that serving needs no code generator, and
tests/test_protos.py fails when they differ from a fresh generation.
"""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

#: the repository: this file is server/attribid/api/protogen.py
ROOT = Path(__file__).resolve().parents[3]
PROTO_DIR = ROOT / "protos"
PROTO = "attribid/v1/attribution.proto"


def generate(out_dir: Path) -> list[Path]:
    """Generate stubs for PROTO into ``out_dir`` (flat); returns the files written."""
    from grpc_tools import protoc  # the dev extra; serving never imports this
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        rc = protoc.main([
            "protoc", f"-I{PROTO_DIR}", f"-I{include}",
            f"--python_out={tmp}", f"--pyi_out={tmp}", f"--grpc_python_out={tmp}",
            str(PROTO_DIR / PROTO),
        ])
        if rc != 0:
            raise RuntimeError(f"protoc failed with exit code {rc}")
        written = []
        out_dir.mkdir(parents=True, exist_ok=True)
        for src in sorted((Path(tmp) / "attribid" / "v1").iterdir()):
            text = src.read_text()
            # Generated code imports `attribid.v1`; that is this package's path too.
            text = re.sub(r"^from attribid\.v1 import", "from attribid.v1 import", text, flags=re.M)
            dst = out_dir / src.name
            dst.write_text(text)
            written.append(dst)
    return written


def main() -> int:
    out = ROOT / "server" / "attribid" / "v1"
    for path in generate(out):
        print(path.relative_to(ROOT))
    init = out / "__init__.py"
    if not init.exists():
        init.write_text('"""Generated gRPC stubs for attribid.v1 (python -m attribid.api.protogen)."""\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
