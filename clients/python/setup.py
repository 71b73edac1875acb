"""The build hook: generates the `agora.v1` stubs from the repository's
`proto/` with grpc_tools.protoc whenever the package is built, so that
they are never committed or edited by hand.

The .proto files are looked up in, first found:

1. `$AGORA_PROTO_DIR` (a directory holding `agora/v1/*.proto`);
2. `proto/` beside this file, which only an sdist has (the sdist command
   below copies the repository's .proto files there);
3. `../../proto`, the repository's, for `pip install ./clients/python`.

Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
PACKAGE = "agora/v1"


def proto_root() -> Path:
    """The directory to pass to protoc as `-I`."""
    candidates = []
    if os.environ.get("AGORA_PROTO_DIR"):
        candidates.append(Path(os.environ["AGORA_PROTO_DIR"]))
    candidates += [HERE / "proto", HERE.parent.parent / "proto"]
    for root in candidates:
        if sorted((root / PACKAGE).glob("*.proto")):
            return root.resolve()
    tried = ", ".join(str(root) for root in candidates)
    raise SystemExit(
        f"agora-client: no {PACKAGE}/*.proto found (tried {tried}); build from a "
        "checkout of the repository (pip install ./clients/python) or set AGORA_PROTO_DIR"
    )


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def floor(requirements: list[str], name: str) -> tuple[int, ...]:
    """The `>=` bound of `name` among the declared dependencies."""
    for requirement in requirements:
        found = re.match(rf"\s*{re.escape(name)}\b[^;]*?>=\s*([0-9.]+)", requirement)
        if found:
            return version_tuple(found.group(1))
    raise SystemExit(f"agora-client: pyproject.toml declares no {name}>= dependency")


def generate(out: Path, requirements: list[str]) -> None:
    """Writes agora/v1/*_pb2.py, *_pb2.pyi and *_pb2_grpc.py under `out`."""
    from importlib import resources

    from grpc_tools import protoc

    root = proto_root()
    sources = sorted(str(path) for path in (root / PACKAGE).glob("*.proto"))
    well_known = resources.files("grpc_tools") / "_proto"
    shutil.rmtree(out / PACKAGE, ignore_errors=True)  # no stale stubs of a removed file
    (out / PACKAGE).mkdir(parents=True)
    command = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *sources,
    ]
    if protoc.main(command) != 0:
        raise SystemExit(f"agora-client: protoc failed on {root / PACKAGE}")
    (out / PACKAGE / "__init__.py").write_text(
        '"""Generated from proto/agora/v1 at build time; do not edit."""\n'
    )
    # The generated code refuses to run on a grpcio or protobuf older than
    # the generator; make sure the declared dependencies say as much.
    generated = "".join(path.read_text() for path in (out / PACKAGE).glob("*.py"))
    for name, pattern in [
        ("protobuf", r"Protobuf Python Version: ([0-9.]+)"),
        ("grpcio", r"GRPC_GENERATED_VERSION = '([0-9.]+)'"),
    ]:
        for needed in set(re.findall(pattern, generated)):
            if version_tuple(needed) > floor(requirements, name):
                raise SystemExit(
                    f"agora-client: the stubs need {name}>={needed}; "
                    f"raise its floor in pyproject.toml"
                )


class BuildPyWithStubs(build_py):
    """build_py, then the stubs into the build directory."""

    def run(self) -> None:
        super().run()
        requirements = list(self.distribution.install_requires or [])
        generate(Path(self.build_lib), requirements)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        stubs = Path(self.build_lib) / PACKAGE
        outputs += [str(path) for path in stubs.glob("*") if path.is_file()]
        return outputs


class SdistWithProtos(sdist):
    """An sdist that carries the .proto files, so it builds on its own."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        root = proto_root()
        for proto in sorted((root / PACKAGE).glob("*.proto")):
            target = Path(base_dir) / "proto" / PACKAGE / proto.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(proto, target)


setup(cmdclass={"build_py": BuildPyWithStubs, "sdist": SdistWithProtos})
