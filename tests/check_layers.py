#!/usr/bin/env python3
"""Layers call downward only (STYLE.md, practice 12): no circle of calls
between C files. For every object file of a build, the symbols it uses
(nm: U) and those it defines; file A depends on file B when A uses what B
defines. A strongly connected group of two or more files is a circle:
printed with the symbols that tie it, exit status 1.

usage: tests/check_layers.py BUILD_DIR      (scripts/test.sh runs it)
"""
import os
import subprocess
import sys


def objects(build):
    for d, _, files in os.walk(build):
        for f in files:
            if f.endswith(".c.o") and "CMakeFiles" in d:
                yield os.path.join(d, f)


def label(obj, build):
    """tail/main.c for build/tail/CMakeFiles/backfill-tail.dir/main.c.o"""
    rel = os.path.relpath(obj, build)
    top = rel.split(os.sep + "CMakeFiles" + os.sep)[0]
    return f"{top}/{os.path.basename(obj)[:-2]}"


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDRBCGSVW":
            defined.add(parts[2])
    return defined, used


def circles(edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            strong(v)
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().split("\n\n")[-1])
    build = sys.argv[1]
    files = {}
    for obj in objects(build):
        files.setdefault(os.path.dirname(obj), {})[label(obj, build)] = symbols(obj)
    found = 0
    # one graph per target: a main.c of one binary never links with another's
    for target, objs in sorted(files.items()):
        owner = {}
        for f, (defined, _) in objs.items():
            for s in defined:
                owner[s] = f
        edges = {f: {} for f in objs}
        for f, (_, used) in objs.items():
            for s in used:
                g = owner.get(s)
                if g and g != f:
                    edges[f].setdefault(g, []).append(s)
        for comp in circles(edges):
            found += 1
            print(f"circle in {os.path.relpath(target, build)}: {' <-> '.join(comp)}")
            for a in comp:
                for b in comp:
                    if b in edges[a]:
                        print(f"  {a} uses {', '.join(sorted(edges[a][b])[:6])} from {b}")
    if found:
        sys.exit(1)
    print(f"layers: no circle of calls between C files ({sum(len(o) for o in files.values())} "
          f"object files)")


if __name__ == "__main__":
    main()
