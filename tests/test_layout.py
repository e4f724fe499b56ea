"""The architecture's rules, checked on the source tree: the library never imports the
pipeline or the command line, nothing registers itself on import, modules stay small."""

import ast
from pathlib import Path

import refusal_atlas
from refusal_atlas.pipeline import STAGES, stage_map

SRC = Path(refusal_atlas.__file__).resolve().parent
UPPER = ("pipeline", "cli")
MAX_LINES = 500


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        yield rel, ast.parse(path.read_text(encoding="utf-8"))


def _imported(rel: Path, tree: ast.AST) -> set[str]:
    """Absolute dotted names of every refusal_atlas module ``tree`` imports."""
    package = ["refusal_atlas", *rel.parent.parts]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    return {n for n in names if n.startswith("refusal_atlas")}


def test_the_library_never_imports_the_pipeline_or_the_cli():
    offenders = []
    for rel, tree in _modules():
        if rel.parts[0] in UPPER:
            continue
        for name in _imported(rel, tree):
            if any(name == f"refusal_atlas.{u}" or name.startswith(f"refusal_atlas.{u}.")
                   for u in UPPER):
                offenders.append(f"{rel} imports {name}")
    assert offenders == []


def test_the_pipeline_never_imports_the_cli():
    offenders = [f"{rel} imports {name}" for rel, tree in _modules() if rel.parts[0] == "pipeline"
                 for name in _imported(rel, tree) if name.startswith("refusal_atlas.cli")]
    assert offenders == []


def test_no_source_module_over_the_size_limit():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_one_explicit_stage_list_in_dependency_order():
    names = [s.name for s in STAGES]
    assert len(names) == len(set(names))
    assert list(stage_map()) == names
    for i, stage in enumerate(STAGES):
        assert set(stage.deps) <= set(names[:i]), stage.name
    assert names[0] == "prompts" and names[-1] == "report"


def test_nothing_registers_itself_at_import():
    """No module calls a register_* function at module level (registries are literal tables)."""
    offenders = []
    for rel, tree in _modules():
        for node in tree.body:
            call = node.value if isinstance(node, ast.Expr) else None
            if isinstance(call, ast.Call):
                func = call.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name.startswith("register") or name == "_register":
                    offenders.append(f"{rel}:{node.lineno} {name}()")
    assert offenders == []
