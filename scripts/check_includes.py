#!/usr/bin/env python3
"""Include-rule check: every quoted #include under src/ must stay inside what its folder may
include, as listed in the layer table of docs/architecture.md (one source of truth).

A row of that table looks like
    | `src/hook/` | libvgpu.so ... | `abi` |
and the last column lists the folders (under src/) this folder may include besides itself;
"-" means none. libvgpu.so and the ABI may in addition include only system headers (<...>).
Exit 0 when clean, 1 with one line per violation, 2 when the table cannot be read.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "architecture.md")
ROW = re.compile(r"^\|\s*`src/([a-z0-9_/]+?)/?`\s*\|.*\|\s*([^|]*?)\s*\|\s*$")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
SOURCES = (".h", ".hh", ".cc", ".cpp", ".c", ".def", ".inc", ".cu")


def read_table():
    allowed = {}
    try:
        with open(DOC, encoding="utf-8") as f:
            for line in f:
                m = ROW.match(line)
                if not m:
                    continue
                deps = m.group(2).replace("`", "").strip()
                names = [] if deps in ("-", "") else [d.strip().strip("/") for d in deps.split(",")]
                allowed[m.group(1)] = set(names)
    except OSError as e:
        print(f"check_includes: cannot read {DOC}: {e}", file=sys.stderr)
        sys.exit(2)
    if not allowed:
        print(f"check_includes: no layer table rows in {DOC}", file=sys.stderr)
        sys.exit(2)
    return allowed


def folder_of(rel, allowed):
    """The longest table entry that is a prefix of rel (a path under src/)."""
    best = None
    for name in allowed:
        if rel == name or rel.startswith(name + "/"):
            if best is None or len(name) > len(best):
                best = name
    return best


def main():
    allowed = read_table()
    src = os.path.join(ROOT, "src")
    errors = []
    for dirpath, _, files in os.walk(src):
        for fn in files:
            if not fn.endswith(SOURCES):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, src)
            owner = folder_of(rel, allowed)
            if owner is None:
                errors.append(f"src/{rel}: folder not in docs/architecture.md's table")
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                for no, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    # A path relative to the including file (same folder) is always fine.
                    if os.path.exists(os.path.join(dirpath, inc)):
                        target = os.path.relpath(os.path.join(dirpath, inc), src)
                    elif os.path.exists(os.path.join(src, inc)):
                        target = inc
                    else:
                        continue  # generated (protobuf, build paths) or a system header in quotes
                    t_owner = folder_of(target, allowed)
                    if t_owner is None or t_owner == owner:
                        continue
                    # A sub-folder may include its parent's siblings only as the table says;
                    # parent and child folders count as one when listed so.
                    if t_owner in allowed[owner]:
                        continue
                    errors.append(f"src/{rel}:{no}: includes \"{inc}\" (src/{t_owner}/), "
                                  f"which src/{owner}/ may not include")
    for e in errors:
        print(e)
    if errors:
        print(f"check_includes: {len(errors)} violation(s) of docs/architecture.md's layer table")
        return 1
    print(f"check_includes: {len(allowed)} folders, no violations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
