#!/usr/bin/env python3
"""Checks that the #include graph points one way.

The daemon's sources live in one folder per layer, lowest first (see
docs/architecture.md, "Layers"). A file may include headers of its own layer
and of the layers below it, never above. The client side has two layers
(lib below cli), and proto/ is below everything. On top of the layer rule the
whole include graph must be acyclic, also within a layer.

Usage: scripts/check-layers.py [--graph]   (exit 1 on a violation)
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Lowest first. The index is the layer's rank.
DAEMON_LAYERS = ["base", "system", "net", "host", "core", "api", "cluster", "request", "app"]
CLIENT_LAYERS = ["lib", "cli"]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources():
    for top in ("proto", "daemon", "client"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for n in names:
                if n.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, n), ROOT)


def rank(path):
    """(group, rank) of a file, or None for files outside the layering."""
    parts = path.split("/")
    if parts[0] == "proto":
        return ("proto", 0)
    if parts[0] == "daemon" and len(parts) > 2 and parts[1] in DAEMON_LAYERS:
        return ("daemon", DAEMON_LAYERS.index(parts[1]))
    if parts[0] == "client" and len(parts) > 2 and parts[1] in CLIENT_LAYERS:
        return ("client", CLIENT_LAYERS.index(parts[1]))
    return None


def resolve(src, name, files):
    """The repository file an include names, or None for a system or
    generated header."""
    here = os.path.dirname(src)
    candidates = [os.path.normpath(os.path.join(here, name))]
    top = src.split("/")[0]
    if top == "daemon":
        candidates += ["daemon/" + name, "daemon/include/" + name, "proto/" + name]
    elif top == "client":
        candidates += ["client/" + name, "client/include/" + name, "client/lib/" + name,
                       "proto/" + name]
    for c in candidates:
        if c in files:
            return c
    return None


def main():
    files = set(sources())
    graph = {}
    errors = []
    for src in sorted(files):
        with open(os.path.join(ROOT, src), encoding="utf-8") as f:
            text = f.read()
        deps = []
        for name in INCLUDE.findall(text):
            dst = resolve(src, name, files)
            if dst is None:
                continue
            deps.append(dst)
            a, b = rank(src), rank(dst)
            if src.startswith("daemon/") and src.split("/")[1] in DAEMON_LAYERS:
                if dst.startswith("daemon/") and not dst.startswith("daemon/include/"):
                    if "/" not in name:
                        errors.append(f"{src}: #include \"{name}\": name a daemon header by its "
                                      f"layer (\"{os.path.relpath(dst, 'daemon')}\")")
            if a and b and a[0] == b[0] and b[1] > a[1]:
                layers = DAEMON_LAYERS if a[0] == "daemon" else CLIENT_LAYERS
                errors.append(f"{src}: includes {dst}: layer '{layers[b[1]]}' is above "
                              f"'{layers[a[1]]}'")
            if a and b and a[0] == "proto" and b[0] != "proto":
                errors.append(f"{src}: includes {dst}: proto/ is below the daemon and the client")
            if a and b and {a[0], b[0]} == {"daemon", "client"}:
                errors.append(f"{src}: includes {dst}: the daemon and the client share only proto/")
        graph[src] = deps

    # Cycles, over the whole graph (a header and its .c count as one node).
    def node(p):
        return p[:-2] if p.endswith((".c", ".h")) else p

    ngraph = {}
    for src, deps in graph.items():
        ngraph.setdefault(node(src), set()).update(node(d) for d in deps if node(d) != node(src))
    state = {}
    stack = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(ngraph.get(n, ())):
            if state.get(m) == 1:
                cyc = stack[stack.index(m):] + [m]
                errors.append("include cycle: " + " -> ".join(cyc))
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    sys.setrecursionlimit(10000)
    for n in sorted(ngraph):
        if n not in state:
            visit(n)

    if "--graph" in sys.argv:
        for src in sorted(graph):
            print(src + ": " + " ".join(sorted(graph[src])))
    for e in errors:
        print(e)
    if errors:
        print(f"check-layers: {len(errors)} violation(s)", file=sys.stderr)
        return 1
    print(f"check-layers: {len(files)} files, include graph acyclic and one-way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
