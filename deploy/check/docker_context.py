"""The build context deploy/Dockerfile sees: the repository less what .dockerignore
excludes. Checks that every COPY of the build stages names something present in
that context, and copies what they copy into DEST, so the build's inputs can be
checked apart from the rest of the tree. Usage: docker_context.py ROOT DEST."""

import fnmatch
import re
import shlex
import shutil
import sys
from pathlib import Path

from rules import Problems


def ignore_patterns(root: Path) -> list[tuple[bool, str]]:
    patterns = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        patterns.append((negated, pattern))
    return patterns


def excluded(relative: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a
    directory excludes everything below it."""
    parts = relative.split("/")
    result = False
    for negated, pattern in patterns:
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase(prefix, pattern[3:])
            ):
                result = not negated
                break
    return result


def copies(dockerfile: Path) -> list[list[str]]:
    """The sources of each COPY that reads the build context (not --from a stage)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0].upper() != "COPY":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        found.append(args[:-1])
    return found


def main(root: Path, dest: Path) -> int:
    p = Problems()
    patterns = ignore_patterns(root)
    for required in ["target", "data", ".git", "deploy/.venv", "examples/node/node_modules"]:
        p.expect(excluded(required, patterns), f".dockerignore does not exclude {required}")
    sources = [s for copy in copies(root / "deploy" / "Dockerfile") for s in copy]
    p.expect(bool(sources), "the Dockerfile copies nothing from the context")
    for source in sources:
        path = root / source
        if not path.exists():
            p.add(f"COPY {source}: not in the repository")
            continue
        if excluded(source, patterns):
            p.add(f"COPY {source}: excluded by .dockerignore")
            continue
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        for f in files:
            relative = f.relative_to(root).as_posix()
            if excluded(relative, patterns):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    # What the build reads besides the sources: the API build.rs compiles and the
    # migrations embedded with sqlx::migrate!.
    needed = re.findall(r'"(proto/[^"]+\.proto)"', (root / "build.rs").read_text())
    for source in (root / "src").rglob("*.rs"):
        needed += re.findall(r'migrate!\("([^"]+)"\)', source.read_text())
    p.expect(bool(needed), "found neither proto files in build.rs nor migrations")
    for path in needed:
        p.expect((dest / path).exists(), f"the build reads {path}, which no COPY brings into the image's build")
    return p.report("deploy/Dockerfile context")


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
