"""Check an ansible-builder build context without a container engine.

Usage: verify_context.py CONTEXT DEFINITION [FORBIDDEN_PATH...]

Fails (exit 1, one line per problem) when
* a ``COPY`` source of the Containerfile/Dockerfile is not in the context;
* a collection that ``_build/requirements.yml`` installs from a file or directory names an absolute
  path, or a path that is not in ``_build/`` (the Containerfile runs ``ansible-galaxy`` in ``/build``,
  a copy of ``_build``);
* an ``additional_build_files`` entry of the definition put nothing into the context
  (ansible-builder only warns about a missing source);
* a text file of the context names one of FORBIDDEN_PATH (paths of the build machine).
"""

from __future__ import annotations

import glob
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml


def _containerfile(context: Path) -> Path:
    for name in ("Containerfile", "Dockerfile"):
        if (context / name).is_file():
            return context / name
    raise SystemExit(f"{context}: no Containerfile or Dockerfile; run ansible-builder create first")


def copy_sources(context: Path) -> List[str]:
    problems = []
    for line in _containerfile(context).read_text(encoding="utf-8").splitlines():
        words = shlex.split(line) if line.strip().startswith("COPY") else []
        if not words or any(w.startswith("--from") for w in words):
            continue
        for src in [w for w in words[1:-1] if not w.startswith("--")]:
            if not (context / src).exists():
                problems.append(f"Containerfile copies {src}, which is not in the context")
    return problems


def galaxy_files(context: Path) -> List[str]:
    problems = []
    build = context / "_build"
    req_file = build / "requirements.yml"
    if not req_file.is_file():
        return problems
    reqs: Dict[str, Any] = yaml.safe_load(req_file.read_text(encoding="utf-8")) or {}
    for entry in reqs.get("collections") or []:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name", ""))
        kind = entry.get("type") or ("file" if name.endswith((".tar.gz", ".tgz")) else "galaxy")
        if kind not in ("file", "dir"):
            continue
        if Path(name).is_absolute():
            problems.append(f"_build/requirements.yml names the absolute path {name}; name it relative to _build/")
        elif not (build / name).exists():
            problems.append(f"_build/requirements.yml installs {name}, which is not in the context's _build/")
    return problems


def build_files(context: Path, definition: Path) -> List[str]:
    problems = []
    data: Dict[str, Any] = yaml.safe_load(definition.read_text(encoding="utf-8")) or {}
    for entry in data.get("additional_build_files") or []:
        src = Path(str(entry["src"]))
        names = [Path(p).name for p in glob.glob(str(src if src.is_absolute() else definition.parent / src))]
        dest = context / "_build" / str(entry["dest"])
        if not names:
            names = [src.name]
        for name in names:
            if not (dest / name).exists():
                problems.append(
                    f"additional_build_files: {src} is not in the context at _build/{entry['dest']}/{name}; "
                    f"put it next to {definition.name} before ansible-builder create"
                )
    return problems


def machine_paths(context: Path, forbidden: List[str]) -> List[str]:
    problems = []
    for path in sorted(context.rglob("*")):
        if not path.is_file() or path.suffix in (".gz", ".tgz"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for bad in forbidden:
            if bad and bad in text:
                problems.append(f"{path.relative_to(context)} names {bad}, a path of the build machine")
    return problems


def main(argv: List[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    context, definition = Path(argv[0]), Path(argv[1])
    problems = copy_sources(context) + galaxy_files(context) + build_files(context, definition)
    problems += machine_paths(context, argv[2:])
    for problem in problems:
        print(f"ee context {context}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
