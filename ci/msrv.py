"""ci/test's minimum-Rust-version check: the `rust-version` Cargo.toml
declares must be at least every dependency's own, over everything a build
of the library, the CLI or the extension compiles (normal and build
dependencies with all features on; dev-dependencies only build our tests).

Only one toolchain exists on these machines, so our own code's side of the
promise is clippy's `incompatible_msrv` lint (on by default, denied by ci/test's
`-D warnings`), which flags std APIs newer than `rust-version`.

Usage: python ci/msrv.py  (reads `cargo metadata`; exit 1 on a violation)
"""

import json
import subprocess
import sys


def version(text):
    return tuple(int(part) for part in text.split("."))


def main():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
        check=True, capture_output=True, text=True).stdout)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]
    ours = packages[root].get("rust_version")
    if not ours:
        print("ci/msrv.py: Cargo.toml declares no rust-version", file=sys.stderr)
        return 1
    # Walk normal and build edges from our package.
    seen, todo = set(), [root]
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            kinds = {k["kind"] for k in dep["dep_kinds"]}
            if node["id"] == root and kinds == {"dev"}:
                continue
            if dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    newer = sorted((version(p["rust_version"]), p["name"], p["version"])
                   for p in (packages[i] for i in seen)
                   if p.get("rust_version") and version(p["rust_version"]) > version(ours))
    for need, name, ver in newer:
        print(f"ci/msrv.py: {name} {ver} needs Rust {'.'.join(map(str, need))}, "
              f"above our rust-version {ours}", file=sys.stderr)
    if newer:
        return 1
    top = max((version(packages[i]["rust_version"]), packages[i]["name"]) for i in seen
              if packages[i].get("rust_version"))
    print(f"rust-version {ours}: {len(seen)} dependencies, the most demanding {top[1]} "
          f"({'.'.join(map(str, top[0]))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
