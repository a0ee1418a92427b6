"""Import graph of a Python package tree: its cycles (imports inside functions count: a cycle
hidden in a function body is still a cycle of responsibilities) and its largest files.
Usage, from the project root: python3 tests/tools/import_cycles.py . sairbench baselines"""
import ast, sys
from pathlib import Path

root = Path(sys.argv[1]); pkgs = sys.argv[2:]
mods = {}
for pkg in pkgs:
    base = root / pkg
    for f in base.rglob("*.py"):
        rel = f.relative_to(root).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"): name = name[: -len(".__init__")]
        mods[name] = f
alias = {"sairbench_baselines": "baselines"}
def resolve(name):
    for a, b in alias.items():
        if name == a or name.startswith(a + "."): name = b + name[len(a):]
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None
graph = {m: set() for m in mods}
for m, f in mods.items():
    tree = ast.parse(f.read_text())
    pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg
                for _ in range(node.level - 1): base = base.rpartition(".")[0]
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            r = resolve(t)
            if r and r != m: graph[m].add(r)
# Tarjan SCC
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def sc(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in graph[v]:
        if w not in index: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in graph:
    if v not in index: sc(v)
# a package importing its own submodule (models -> models.x) is not a cycle of responsibility
sccs = [c for c in sccs if not all(x == c[0] or x.startswith(c[0] + ".") for x in c)]
sizes = sorted(((len(f.read_text().splitlines()), str(f.relative_to(root))) for f in mods.values()), reverse=True)
for c in sccs: print("cycle:", " <-> ".join(c))
print("largest:", ", ".join(f"{p} {n}" for n, p in sizes[:5]))
print(f"modules={len(mods)} cycles={len(sccs)} largest_lines={sizes[0][0]}")
