"""The tree reads as ARCHITECTURE.md's data-flow picture: every import arrow points down the layers
(networks -> export -> runtime -> animate/analysis -> live -> cli) and no modules import each other in
a circle. Lazy imports inside functions count: they are arrows too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# Rank of each top-level part; a module may import its own rank or lower, never higher.
RANKS = {"errors": 0, "vocab": 0, "fileio": 0, "version": 0, "networks": 1, "export": 2, "runtime": 3,
         "animate": 4, "analysis": 4, "live": 5, "doctor": 6, "cli": 6}
SKIP = {"tests", "benchmarks", "build", "dist", "docs"}


def package_modules() -> dict[str, Path]:
    """'networks.layers' -> path, for every module of the package (the root __init__ is the front door:
    it names everything lazily, by string, and is not part of the layering)."""
    modules = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        rel = path.relative_to(PACKAGE_ROOT)
        if rel.parts[0] in SKIP or rel.parts[0].startswith(".") or rel == Path("__init__.py"):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of the package that `name` imports (relative imports resolved; package -> its __init__)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not (node.module or "").startswith("sg3rt"):
                    continue
                base = (node.module or "").split(".")[1:]
            else:
                base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            for alias in node.names:
                sub = ".".join(base + [alias.name])
                target = sub if sub in modules else ".".join(base)
                found.add(target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sg3rt."):
                    found.add(alias.name.split(".", 1)[1])
    found.discard(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    unknown = sorted({name.split(".")[0] for name in package_modules()} - set(RANKS))
    assert not unknown, f"add these parts to ARCHITECTURE.md and RANKS: {unknown}"


def test_arrows_point_down():
    upward = []
    for name, targets in graph().items():
        for target in targets:
            if target == "" and name != "cli":  # the front door names everything: only the CLI stands above it
                upward.append(f"{name} -> sg3rt (import from the module that defines it)")
            elif target and RANKS[target.split(".")[0]] > RANKS[name.split(".")[0]]:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports against the data flow:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_checker_sees_a_planted_upward_import(tmp_path, monkeypatch):
    """The checker itself works: an upward arrow in a copy of a module is reported."""
    fake = tmp_path / "layers.py"
    fake.write_text("from ..runtime import open_generator\n")
    modules = package_modules()
    assert imports_of("networks.layers", fake, modules) == {"runtime"}
