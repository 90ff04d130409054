"""libvgpu.so must load on the oldest glibc a container may run (src/hook/glibc_compat.h).

A preloaded library that needs a newer glibc symbol version than the container has is not
loaded at all, and the program runs with no limits. This checks the built library:

  - no glibc symbol version above HAMI_GLIBC_FLOOR (default 2.17: RHEL/CentOS 7) is needed;
  - no libstdc++ / libgcc_s at run time (their versions follow the build machine's compiler);
  - the dl* and pthread_* functions glibc 2.34 moved into libc are needed from libdl.so.2 and
    libpthread.so.0, where glibc before 2.34 keeps them (needed from libc.so.6, old ld.so
    refuses the library: "symbol pthread_setspecific version GLIBC_2.2.5 not defined in
    file libc.so.6");
  - it loads with every symbol bound at once (LD_BIND_NOW) into a program on this machine;
  - its sources (src/hook) call none of the functions glibc 2.38+ headers redirect to
    __isoc23_* (GLIBC_2.38) in C++: strtol and friends, atoi/atol/atoll, the scanf family.
    A build on this machine's older glibc cannot show that; one on Ubuntu 24.04 did.

Usage: python3 tests/compat/glibc_floor.py path/to/libvgpu.so  (exit 1 with the reasons)
       python3 tests/compat/glibc_floor.py selftest
"""
import os
import platform
import re
import subprocess
import sys

FLOOR = tuple(int(x) for x in os.environ.get("HAMI_GLIBC_FLOOR", "2.17").split("."))
ALLOWED_NEEDED = {"libc.so.6", "libdl.so.2", "libpthread.so.0", "ld-linux-x86-64.so.2",
                  "ld-linux-aarch64.so.1"}
# readelf's name of each machine the library is built for, as platform.machine() says it.
READELF_MACHINE = {"x86_64": "Advanced Micro Devices X86-64", "aarch64": "AArch64"}
# pthread_* that libc.so.6 itself exported before glibc 2.34 (forwarders): libc may provide them.
OLD_LIBC_PTHREAD = re.compile(
    r"pthread_(mutex_(lock|unlock|init|destroy)|cond_\w+|condattr_\w+|attr_\w+|self|equal|exit|"
    r"[gs]etschedparam|setcancel(state|type))$")


def version_needs(readelf_v):
    """{version index: (file, version name)} from `readelf -V --wide`."""
    out, current = {}, None
    in_r = False
    for line in readelf_v.splitlines():
        if "'.gnu.version_r'" in line:
            in_r = True
            continue
        if in_r and line.startswith("Version") and "'.gnu.version_r'" not in line:
            in_r = False
        if not in_r:
            continue
        m = re.search(r"File: (\S+)", line)
        if m:
            current = m.group(1)
            continue
        m = re.search(r"Name: (\S+)\s+Flags: \S+\s+Version: (\d+)", line)
        if m and current:
            out[int(m.group(2))] = (current, m.group(1))
    return out


def undefined_symbols(readelf_syms):
    """[(name, version, version index)] of the undefined dynamic symbols (readelf --dyn-syms -W)."""
    out = []
    for line in readelf_syms.splitlines():
        f = line.split()
        if len(f) >= 8 and f[6] == "UND" and "@" in f[7]:
            name, _, ver = f[7].partition("@")
            idx = int(f[8].strip("()")) if len(f) > 8 and f[8].startswith("(") else None
            out.append((name, ver.lstrip("@"), idx))
    return out


def needed_libs(readelf_d):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf_d)


def glibc_version(v):
    m = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", v)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def problems(needs, syms, needed):
    bad = []
    for lib in needed:
        if lib not in ALLOWED_NEEDED:
            bad.append(f"needs {lib} at run time (only {sorted(ALLOWED_NEEDED)} may be)")
    for idx, (lib, ver) in sorted(needs.items()):
        g = glibc_version(ver)
        if g is None:
            bad.append(f"needs version {ver} of {lib} (not glibc: a compiler runtime)")
        elif g > FLOOR:
            users = [n for n, v, i in syms if i == idx]
            bad.append(f"needs {ver} of {lib} (above {'.'.join(map(str, FLOOR))}) for "
                       f"{', '.join(users) or '?'}")
    for name, ver, idx in syms:
        lib = needs.get(idx, ("?", ver))[0] if idx is not None else "?"
        moved = name.startswith("dl") or (name.startswith("pthread_") and
                                           not OLD_LIBC_PTHREAD.match(name))
        if moved and lib == "libc.so.6":
            bad.append(f"{name}@{ver} is needed from libc.so.6: glibc before 2.34 has it in "
                       f"{'libdl.so.2' if name.startswith('dl') else 'libpthread.so.0'}")
    return bad


HOOK_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "src", "hook")
C23_REDIRECTED = re.compile(r"\b(strto(l|ll|ul|ull|imax|umax)|atoi|atol|atoll|v?f?scanf|v?sscanf)"
                            r"\s*\(")


def c23_calls(text, name):
    """Calls of C23-redirected functions in one source text (comments ignored)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("//")[0]
        m = C23_REDIRECTED.search(code)
        if m:
            out.append(f"{name}:{n} calls {m.group(1)} (glibc 2.38+ headers make it "
                       f"__isoc23_{m.group(1)}@GLIBC_2.38; parse by hand)")
    return out


def source_problems(src=HOOK_SRC):
    bad = []
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith((".cc", ".h", ".c")):
                path = os.path.join(root, f)
                with open(path, encoding="utf-8") as fh:
                    bad += c23_calls(fh.read(), os.path.relpath(path, os.path.dirname(src)))
    return bad


def check(lib):
    run = lambda *a: subprocess.run(a, capture_output=True, text=True, check=True).stdout  # noqa
    needs = version_needs(run("readelf", "-V", "--wide", lib))
    syms = undefined_symbols(run("readelf", "--dyn-syms", "-W", lib))
    bad = problems(needs, syms, needed_libs(run("readelf", "-d", lib))) + source_problems()
    if not needs:
        bad.append("no version needs found (readelf output not understood)")
    machine = re.search(r"Machine:\s+(.+)", run("readelf", "-h", lib)).group(1).strip()
    if machine != READELF_MACHINE.get(platform.machine()):
        # A cross build (cmake/aarch64-linux-gnu.cmake): checked above, loaded elsewhere
        # (tests/compat/old_glibc_load.sh under qemu).
        print(f"{lib}: built for {machine}, not loaded on this {platform.machine()} machine")
        return bad, needs
    env = dict(os.environ, LD_PRELOAD=os.path.abspath(lib), LD_BIND_NOW="1")
    p = subprocess.run(["/bin/true"], env=env, capture_output=True, text=True)
    if p.returncode != 0 or p.stderr.strip():
        bad.append(f"/bin/true with it preloaded (LD_BIND_NOW=1): rc={p.returncode} "
                   f"{p.stderr.strip()[:300]}")
    return bad, needs


def selftest():
    readelf_v = """Version needs section '.gnu.version_r' contains 2 entries:
 Addr: 0x0  Offset: 0x0  Link: 4 (.dynstr)
  000000: Version: 1  File: libpthread.so.0  Cnt: 1
  0x0010:   Name: GLIBC_2.2.5  Flags: none  Version: 3
  0x0020: Version: 1  File: libc.so.6  Cnt: 2
  0x0030:   Name: GLIBC_2.34  Flags: none  Version: 4
  0x0040:   Name: GLIBC_2.2.5  Flags: none  Version: 2
"""
    needs = version_needs(readelf_v)
    assert needs == {3: ("libpthread.so.0", "GLIBC_2.2.5"), 4: ("libc.so.6", "GLIBC_2.34"),
                     2: ("libc.so.6", "GLIBC_2.2.5")}, needs
    syms_text = """Symbol table '.dynsym' contains 4 entries:
   Num:    Value          Size Type    Bind   Vis      Ndx Name
     1: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND pthread_once@GLIBC_2.2.5 (3)
     2: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND dlopen@GLIBC_2.34 (4)
     3: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND pthread_mutex_lock@GLIBC_2.2.5 (2)
     4: 0000000000000000     0 FUNC    GLOBAL DEFAULT  UND pthread_key_create@GLIBC_2.2.5 (2)
     5: 0000000000001000    10 FUNC    GLOBAL DEFAULT   12 cuInit
"""
    syms = undefined_symbols(syms_text)
    assert ("pthread_once", "GLIBC_2.2.5", 3) in syms and len(syms) == 4, syms
    bad = problems(needs, syms, ["libc.so.6", "libstdc++.so.6"])
    text = "\n".join(bad)
    assert "libstdc++.so.6" in text, text
    assert "GLIBC_2.34 of libc.so.6 (above 2.17) for dlopen" in text, text
    assert "dlopen@GLIBC_2.34 is needed from libc.so.6" in text, text
    assert "pthread_key_create@GLIBC_2.2.5 is needed from libc.so.6" in text, text
    assert "pthread_mutex_lock" not in text and "pthread_once" not in text, text
    assert problems({2: ("libc.so.6", "GLIBC_2.2.5"), 5: ("libstdc++.so.6", "GLIBCXX_3.4.30")},
                    [], [])[0].startswith("needs version GLIBCXX_3.4.30")
    # aarch64: every old version is GLIBC_2.17, its first glibc.
    arm_needs = {2: ("libc.so.6", "GLIBC_2.17"), 3: ("libpthread.so.0", "GLIBC_2.17"),
                 4: ("libc.so.6", "GLIBC_2.34")}
    arm = problems(arm_needs, [("pthread_once", "GLIBC_2.17", 3), ("dlopen", "GLIBC_2.17", 2),
                               ("pthread_mutex_lock", "GLIBC_2.17", 2), ("stat", "GLIBC_2.33", 4)],
                   ["libc.so.6", "libpthread.so.0", "ld-linux-aarch64.so.1"])
    text = "\n".join(arm)
    assert len(arm) == 2, arm
    assert "GLIBC_2.34 of libc.so.6 (above 2.17) for stat" in text, text
    assert "dlopen@GLIBC_2.17 is needed from libc.so.6" in text, text
    c23 = c23_calls("long v = strtol(s, &e, 10);\n// strtoll(x) in a comment\nint n = "
                    "sscanf(b, \"%d\", &k);\nmy_strtol(1);\n", "x.cc")
    assert len(c23) == 2 and c23[0].startswith("x.cc:1 calls strtol") and "x.cc:3" in c23[1], c23
    print("selftest ok")


def main():
    if sys.argv[1:] == ["selftest"]:
        selftest()
        return
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bad, needs = check(sys.argv[1])
    for b in bad:
        print("FAIL:", b)
    newest = max((glibc_version(v) for _, v in needs.values() if glibc_version(v)), default=())
    print(f"{sys.argv[1]}: newest glibc version needed {'.'.join(map(str, newest))}, from "
          f"{sorted({lib for lib, _ in needs.values()})}; {len(bad)} problem(s)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
