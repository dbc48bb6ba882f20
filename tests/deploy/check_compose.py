"""Checks deploy/compose.yaml (and files added to it, e.g.
deploy/compose.postgres.yaml) without a container engine.

1. Against the Compose specification's JSON schema (`compose_spec.json` as
   shipped in the docker-compose 1.29.2 wheel from PyPI, whose path is the
   first argument): a misspelt key or a wrong shape fails.
2. Against the binaries (their directory is the second argument): every
   service runs an image deploy/images/build.sh makes, mounts a volume at that
   image's state directory, and every GORP_* variable it sets is one the
   image's binary reads (from its `--help`), so a misspelt variable, which a
   binary would silently ignore, fails too. Services on an image from
   elsewhere (Postgres) need a volume at its data directory.

Several compose files are merged the way compose merges them (later files
add services and keys, and override values) before the second step.

Usage: check_compose.py COMPOSE_SPEC_JSON BINARY_DIR [COMPOSE_FILE...]
"""

import json
import pathlib
import re
import subprocess
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
# service image -> (binary, state directory in the image)
IMAGES = {
    "gorp/gorpd:latest": ("gorpd", "/data"),
    "gorp/telegram:latest": ("gorp-telegram", "/state"),
    "gorp/slack:latest": ("gorp-slack", "/state"),
    "gorp/matrix:latest": ("gorp-matrix", "/state"),
}
# images from elsewhere -> their data directory
EXTERNAL_IMAGES = {"docker.io/library/postgres:16": "/var/lib/postgresql/data"}


def env_names_read_by(binary: pathlib.Path) -> set:
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"\benv: (GORP_[A-Z0-9_]+)", help_text))


def problems_with(compose: dict, binaries: pathlib.Path) -> list:
    found = []
    for name, service in compose["services"].items():
        image = service.get("image")
        targets = [volume.split(":")[1] for volume in service.get("volumes", [])]
        if image in EXTERNAL_IMAGES:
            if EXTERNAL_IMAGES[image] not in targets:
                found.append(f"{name}: no volume at {EXTERNAL_IMAGES[image]}, so its data is lost with the container")
            continue
        if image not in IMAGES:
            found.append(f"{name}: image {image!r} is not one deploy/images/build.sh makes")
            continue
        binary, state_dir = IMAGES[image]
        if state_dir not in targets:
            found.append(f"{name}: no volume at {state_dir}, so its state is lost with the container")
        known = env_names_read_by(binaries / binary)
        for variable in service.get("environment", {}):
            if variable.startswith("GORP_") and variable not in known:
                found.append(f"{name}: {binary} reads no {variable}")
    return found


def merged(base: dict, added: dict) -> dict:
    """`added` over `base`, as compose merges files: mappings key by key, other values replaced."""
    result = dict(base)
    for key, value in added.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def main() -> int:
    schema = json.loads(pathlib.Path(sys.argv[1]).read_text())
    binaries = pathlib.Path(sys.argv[2])
    paths = [pathlib.Path(arg) for arg in sys.argv[3:]] or [ROOT / "deploy" / "compose.yaml"]
    problems, compose = [], {}
    for path in paths:
        document = yaml.safe_load(path.read_text())
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
        problems += [f"{path}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors]
        compose = merged(compose, document)
    names = " + ".join(str(path) for path in paths)
    if not problems:
        problems = [f"{names}: {problem}" for problem in problems_with(compose, binaries)]
    for problem in problems:
        print(f"check_compose: FAIL: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_compose: {names} follow the Compose specification; {len(compose['services'])} services match their images")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
