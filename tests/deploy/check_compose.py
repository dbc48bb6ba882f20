"""Checks deploy/compose.yaml without a container engine.

1. Against the Compose specification's JSON schema (`compose_spec.json` as
   shipped in the docker-compose 1.29.2 wheel from PyPI, whose path is the
   first argument): a misspelt key or a wrong shape fails.
2. Against the binaries (their directory is the second argument): every
   service runs an image deploy/images/build.sh makes, mounts a volume at that
   image's state directory, and every GORP_* variable it sets is one the
   image's binary reads (from its `--help`), so a misspelt variable, which a
   binary would silently ignore, fails too.

Usage: check_compose.py COMPOSE_SPEC_JSON BINARY_DIR [COMPOSE_FILE]
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


def env_names_read_by(binary: pathlib.Path) -> set:
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"\benv: (GORP_[A-Z0-9_]+)", help_text))


def problems_with(compose: dict, binaries: pathlib.Path) -> list:
    found = []
    for name, service in compose["services"].items():
        image = service.get("image")
        if image not in IMAGES:
            found.append(f"{name}: image {image!r} is not one deploy/images/build.sh makes")
            continue
        binary, state_dir = IMAGES[image]
        targets = [volume.split(":")[1] for volume in service.get("volumes", [])]
        if state_dir not in targets:
            found.append(f"{name}: no volume at {state_dir}, so its state is lost with the container")
        known = env_names_read_by(binaries / binary)
        for variable in service.get("environment", {}):
            if variable.startswith("GORP_") and variable not in known:
                found.append(f"{name}: {binary} reads no {variable}")
    return found


def main() -> int:
    schema = json.loads(pathlib.Path(sys.argv[1]).read_text())
    binaries = pathlib.Path(sys.argv[2])
    path = pathlib.Path(sys.argv[3]) if len(sys.argv) > 3 else ROOT / "deploy" / "compose.yaml"
    compose = yaml.safe_load(path.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    problems = [f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors]
    if not problems:
        problems = problems_with(compose, binaries)
    for problem in problems:
        print(f"check_compose: FAIL: {path}: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_compose: {path} follows the Compose specification; {len(compose['services'])} services match their images")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
