#!/usr/bin/env python3
"""Generates the gorp.v1 stubs (messages, gRPC stubs and .pyi type stubs)
from ../../proto into ./gorp/v1 with grpcio-tools.

    python generate_stubs.py           # write them
    python generate_stubs.py --check   # exit 1 when they differ from the protos

The stubs are committed so `pip install clients/python` needs no protoc;
tests/run.sh runs --check so they never drift from proto/gorp/v1.
"""

import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"


def generate(proto_root: pathlib.Path, out: pathlib.Path) -> None:
    """Compiles every gorp/v1/*.proto under `proto_root` into `out`."""
    import grpc_tools
    from grpc_tools import protoc

    out.mkdir(parents=True, exist_ok=True)
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "gorp" / "v1").glob("*.proto"))
    args = ["protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out}", f"--pyi_out={out}",
            f"--grpc_python_out={out}", *protos]
    if protoc.main(args) != 0:
        sys.exit("generate_stubs: protoc failed")
    for package in (out / "gorp", out / "gorp" / "v1"):
        (package / "__init__.py").touch()


def main() -> int:
    if "--check" not in sys.argv:
        generate(PROTO_ROOT, HERE)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = pathlib.Path(tmp)
        generate(PROTO_ROOT, fresh)
        stale = [p.name for p in sorted((fresh / "gorp" / "v1").iterdir())
                 if not (HERE / "gorp" / "v1" / p.name).is_file()
                 or (HERE / "gorp" / "v1" / p.name).read_bytes() != p.read_bytes()]
    if stale:
        print(f"clients/python: stubs out of date ({', '.join(stale)}): run python clients/python/generate_stubs.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
