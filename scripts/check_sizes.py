#!/usr/bin/env python3
"""Size check of issue 11: no source file over 600 lines and no function over 80 lines under
src/, outside tests (*_test.cc, testing/, fuzz/), generated code and the listed exceptions.

Functions are found with a brace-matching scan that skips comments, strings and character
literals: a `{` whose preceding text ends in `)` (optionally followed by const, noexcept,
override, final, `-> T`, or a constructor's initialiser list) opens a function body unless it
is a lambda or sits inside another function. Namespaces, classes, structs, enums and
`extern "C"` blocks are scopes, not functions. Exit 0 when clean, 1 with one line per finding.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_FILE, MAX_FUNC = 600, 80
SOURCES = (".h", ".cc", ".cpp", ".c")
# Table data, not logic (the issue exempts it): path -> reason.
EXEMPT = {}
SCOPE = re.compile(r"\b(namespace|class|struct|union|enum)\b[^;()]*$|extern\s+\"C\"\s*$")
FUNC_TAIL = re.compile(
    r"\)\s*(const\s*)?(noexcept(\s*\([^)]*\))?\s*)?(override\s*)?(final\s*)?"
    r"(->\s*[\w:<>,\s*&]+)?$|\)\s*:\s*[\w:]+[({].*[)}]\s*$")


def is_test(rel):
    base = os.path.basename(rel)
    parts = rel.split(os.sep)
    return base.endswith("_test.cc") or "testing" in parts or "fuzz" in parts or \
        base.startswith("test_") or base.endswith("_test_util.h") or base == "test_util.h"


def strip(text):
    """Comments, strings and char literals blanked, newlines kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + (m.group(1) if m else "") + '"', i)
            j = n if end < 0 else end + len(m.group(1) if m else "") + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text):
    """(start_line, lines) of every function body."""
    code = strip(text)
    found, stack, head_start = [], [], 0  # stack: ("scope"|"func"|"block", line)
    line = 1
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            head = code[head_start:i]
            head_flat = " ".join(head.split())
            in_func = any(kind == "func" for kind, _ in stack)
            if in_func:
                stack.append(("block", line))
            elif SCOPE.search(head_flat) and "(" not in head_flat.split("=")[0][-1:]:
                stack.append(("scope", line))
            elif FUNC_TAIL.search(head_flat) and not head_flat.endswith("]"):
                first = line - head.count("\n", len(head) - len(head.lstrip()))
                stack.append(("func", first))
            else:
                stack.append(("block", line))
            head_start = i + 1
        elif c == "}":
            if stack:
                kind, start = stack.pop()
                if kind == "func":
                    found.append((start, line - start + 1))
            head_start = i + 1
        elif c == ";":
            head_start = i + 1
    return found


def main():
    findings = []
    for top in ("src",):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for fn in sorted(files):
                if not fn.endswith(SOURCES):
                    continue
                path = os.path.join(dirpath, fn)
                rel = os.path.relpath(path, ROOT)
                if is_test(os.path.relpath(path, os.path.join(ROOT, top))) or rel in EXEMPT:
                    continue
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                n = text.count("\n")
                if n > MAX_FILE:
                    findings.append(f"{rel}: {n} lines (max {MAX_FILE})")
                for start, length in functions(text):
                    if length > MAX_FUNC:
                        findings.append(f"{rel}:{start}: function of {length} lines (max {MAX_FUNC})")
    for f in findings:
        print(f)
    if findings:
        print(f"check_sizes: {len(findings)} finding(s)")
        return 1
    print("check_sizes: no file over 600 lines, no function over 80 lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
