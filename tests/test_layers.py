"""The layering rule of DESIGN.md, read from the source: an import only points down, and no import circle.

    cli  >  serve  >  tasks, lab  >  training  >  engines, data, bundle, ...  >  config, errors, fileio, ...

Every `import` in src/rnnkit counts, also those inside functions (they run later, but they are still
a dependency). The circle check looks at the imports a module runs when it is loaded.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = [  # lowest first; a module may import its own layer and the ones below
    {"rnnkit", "rnnkit.errors", "rnnkit.optional", "rnnkit.fileio", "rnnkit.config", "rnnkit.params"},
    {"rnnkit.numpy_engine", "rnnkit.torch_engine", "rnnkit.data", "rnnkit.bundle", "rnnkit.decoding",
     "rnnkit.metrics"},
    {"rnnkit.training"},
    {"rnnkit.tasks", "rnnkit.lab"},  # lab: the RNN lab's experiments, over the engines like a task
    {"rnnkit.serve"},
    {"rnnkit.cli"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best = None
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if prefix != "rnnkit" and (module == prefix or module.startswith(prefix + ".")):
                best = index
    if best is None and module == "rnnkit":
        best = 0
    assert best is not None, f"{module} is in no layer: add it to LAYERS (and to DESIGN.md's picture)"
    return best


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The rnnkit modules `path` imports."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rnnkit"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnkit"):
            found.add(node.module)
            package = SRC / node.module.replace(".", "/")
            found.update(f"{node.module}.{a.name}" for a in node.names if (package / f"{a.name}.py").exists()
                         or (package / a.name / "__init__.py").exists())
    return found


MODULES = {module_name(p): p for p in sorted((SRC / "rnnkit").rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(set(MODULES) - {"rnnkit"}))
def test_imports_only_point_down(module):
    # `rnnkit` itself is the Python API's front door (rnnkit.load): everyone may import it for __version__,
    # and it reaches the tasks only inside its functions
    own = layer_of(module)
    upward = sorted(m for m in imports(MODULES[module]) if layer_of(m) > own)
    assert not upward, f"{module} (layer {own}) imports {upward} from above it"


def test_nothing_below_the_command_line_imports_it():
    # rnnkit.train, in the front door, runs a train command from Python with the command line's options
    offenders = sorted(m for m, p in MODULES.items() if not m.startswith("rnnkit.cli") and m != "rnnkit"
                       and any(i == "rnnkit.cli" or i.startswith("rnnkit.cli.") for i in imports(p)))
    assert not offenders


def test_no_import_circle_when_modules_load():
    graph = {m: {i for i in imports(p, top_level_only=True) if i in MODULES and i != m} for m, p in MODULES.items()}
    # importing a package's submodule loads the package first: a submodule importing its own package is fine
    graph = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
