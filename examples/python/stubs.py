"""Generates the gRPC stubs of onshi-gateway's API from `proto/` with grpcio-tools.

The stubs are build output, not source: they are written to `generated/` beside this
file (git-ignored) and regenerated whenever a `.proto` file changes. Run it alone
(`python stubs.py`) or let the client call `ensure()` on start.
"""

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The gateway's API: the repository's proto/, or wherever ONSHI_PROTO_DIR says.
DEFAULT_PROTO_DIR = Path(os.environ.get("ONSHI_PROTO_DIR") or HERE.parent.parent / "proto")
OUT_DIR = HERE / "generated"
STAMP = OUT_DIR / ".proto-hash"


def _proto_files(proto_dir: Path) -> list[Path]:
    files = sorted(proto_dir.rglob("*.proto"))
    if not files:
        raise SystemExit(f"no .proto files under {proto_dir}")
    return files


def _hash(proto_dir: Path, files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(proto_dir)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def generate(proto_dir: Path = DEFAULT_PROTO_DIR) -> None:
    """Runs protoc (bundled with grpcio-tools) into a fresh directory, then swaps it
    in, so a concurrent reader never sees half a set of stubs."""
    from grpc_tools import protoc  # imported here: only generation needs grpcio-tools

    files = _proto_files(proto_dir)
    # grpcio-tools ships google/protobuf/*.proto (timestamp.proto and friends).
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    tmp = Path(tempfile.mkdtemp(prefix=".generated-", dir=HERE))
    try:
        args = [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(f) for f in files],
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto_dir}")
        digest = _hash(proto_dir, files)
        (tmp / STAMP.name).write_text(digest)
        old = HERE / f".generated-old-{os.getpid()}"
        if OUT_DIR.exists():
            OUT_DIR.rename(old)
        try:
            tmp.rename(OUT_DIR)
        except OSError:
            # Another run swapped in its stubs first: fine if they are of the same protos.
            if not STAMP.exists() or STAMP.read_text() != digest:
                raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure(proto_dir: Path = DEFAULT_PROTO_DIR) -> None:
    """Generates the stubs unless the ones in `generated/` match the protos, and
    puts `generated/` on the import path."""
    files = _proto_files(proto_dir)
    current = STAMP.read_text() if STAMP.exists() else ""
    if current != _hash(proto_dir, files):
        generate(proto_dir)
    if str(OUT_DIR) not in sys.path:
        sys.path.insert(0, str(OUT_DIR))


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PROTO_DIR
    generate(source)
    print(f"generated stubs for {source} in {OUT_DIR}")
