"""The layout's rules, read from the imports (docs/architecture.md, docs/decisions/0003).

Every ``import`` statement counts, including those under ``if TYPE_CHECKING:`` and inside
functions: a cycle that only type-checking sees is still two packages that cannot be
understood one without the other.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Provider SDKs, HTTP clients and web frameworks: the core speaks none of them.
FORBIDDEN_IN_RELAY = {
    "bots",
    "cercle",
    "httpx",
    "httpx_ws",
    "twilio",
    "starlette",
    "uvicorn",
    "fastapi",
    "flask",
    "aiohttp",
    "requests",
    "websockets",
    "jinja2",
}


# relay/'s packages from the bottom up: each may import only those below it (the modules
# directly in relay/, the contract adapters speak, may also import each other). A new
# package goes in the layer that matches what it imports; docs/architecture.md draws this.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(f"relay.{name}" for name in layer.split())
    for layer in (
        "errors clock messages transport phone doors",
        "language",
        "storage",
        "delivery",
        "core",
        "groups",
        "safety",
        "commands privacy",
        "inbound",
        "service",
    )
)


@dataclass(frozen=True)
class Import:
    """One imported module, and where the import is written."""

    importer: str  # dotted module that imports
    imported: str  # dotted module imported
    where: str  # path:line

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported} ({self.where})"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package of this repository."""
    base = ROOT / Path(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imports_in(source: str, importer: str, filename: str, *, package: bool = False) -> list[Import]:
    """Every module ``source`` imports, relative names resolved; ``from relay import x`` names
    ``relay.x`` when ``x`` is a module."""
    parent = importer if package else importer.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found.extend(Import(importer, alias.name, where) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = parent.split(".")[: len(parent.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(importer, sub if is_module(sub) else base, where))
    return found


def imports_of(path: Path) -> list[Import]:
    """Every module the file at ``path`` imports."""
    return imports_in(
        path.read_text(encoding="utf-8"),
        module_name(path),
        str(path.relative_to(ROOT)),
        package=path.name == "__init__.py",
    )


def sources(top: str) -> list[Path]:
    return sorted(
        p for p in (ROOT / top).rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts
    )


def unit(module: str) -> str:
    """The unit the cycle rule is about: ``relay.delivery.outbox`` -> ``relay.delivery``;
    a module directly in ``relay/`` (``relay.messages``) is a unit of its own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def relay_graph() -> dict[str, dict[str, Import]]:
    """Unit -> unit it imports -> one import that shows it."""
    graph: dict[str, dict[str, Import]] = {}
    for path in sources("relay"):
        for imp in imports_of(path):
            if not imp.imported.startswith("relay."):
                continue
            a, b = unit(imp.importer), unit(imp.imported)
            if a not in (b, "relay"):
                graph.setdefault(a, {}).setdefault(b, imp)
    return graph


def find_cycle(graph: dict[str, dict[str, Import]]) -> list[Import] | None:
    """One cycle in ``graph`` as the chain of imports that closes it, or ``None``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[Import] = []

    def visit(node: str) -> list[Import] | None:
        state[node] = 1
        for target, imp in sorted(graph.get(node, {}).items()):
            if state.get(target) == 1:
                start = next(i for i, step in enumerate(path) if unit(step.importer) == target)
                return [*path[start:], imp] if path else [imp]
            if state.get(target) is None:
                path.append(imp)
                if (found := visit(target)) is not None:
                    return found
                path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None and (found := visit(node)) is not None:
            return found
    return None


def describe(chain: list[Import]) -> str:
    units = " -> ".join([unit(chain[0].importer), *(unit(i.imported) for i in chain)])
    return f"import cycle {units}:\n  " + "\n  ".join(str(i) for i in chain)


def test_no_cycle_between_relay_packages() -> None:
    chain = find_cycle(relay_graph())
    assert chain is None, describe(chain or [])


def test_the_cycle_finder_reports_the_chain() -> None:
    a_b = Import("relay.a.x", "relay.b.y", "relay/a/x.py:3")
    b_c = Import("relay.b.y", "relay.c.z", "relay/b/y.py:4")
    c_a = Import("relay.c.z", "relay.a.w", "relay/c/z.py:5")
    graph = {"relay.a": {"relay.b": a_b}, "relay.b": {"relay.c": b_c}, "relay.c": {"relay.a": c_a}}
    chain = find_cycle(graph)
    assert chain == [a_b, b_c, c_a]
    assert describe(chain).startswith("import cycle relay.a -> relay.b -> relay.c -> relay.a:")
    assert find_cycle({"relay.a": {"relay.b": a_b}, "relay.b": {"relay.c": b_c}}) is None


def layer_of(name: str) -> int:
    found = [i for i, layer in enumerate(LAYERS) if name in layer]
    assert found, f"{name} is in no layer of LAYERS (tests/test_architecture.py): add it"
    return found[0]


def test_each_relay_package_imports_only_the_layers_below_it() -> None:
    found = [
        f"{imp} (layer {layer_of(a)} may not import layer {layer_of(b)})"
        for a, targets in relay_graph().items()
        for b, imp in targets.items()
        if layer_of(b) > layer_of(a) or (layer_of(b) == layer_of(a) and layer_of(a) > 0)
    ]
    assert not found, "\n".join(found)


def test_every_relay_package_is_in_a_layer() -> None:
    units = {unit(module_name(p)) for p in sources("relay")} - {"relay"}
    assert [u for u in sorted(units) if not any(u in layer for layer in LAYERS)] == []


def test_root_modules_of_relay_import_no_sub_package() -> None:
    """messages, transport, errors, clock, phone, doors: the contract adapters speak, below
    everything else."""
    found = [
        str(imp)
        for path in sorted((ROOT / "relay").glob("*.py"))
        for imp in imports_of(path)
        if imp.imported.startswith("relay.") and (ROOT / "relay" / unit(imp.imported)[6:]).is_dir()
    ]
    assert not found, "\n".join(found)


def test_relay_imports_no_adapter_sdk_or_web_framework() -> None:
    found = [
        str(imp)
        for path in sources("relay")
        for imp in imports_of(path)
        if imp.imported.split(".")[0] in FORBIDDEN_IN_RELAY
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("adapter", sorted(p.name for p in (ROOT / "bots").iterdir() if p.is_dir()))
def test_an_adapter_imports_no_other_adapter(adapter: str) -> None:
    others = {p.name for p in (ROOT / "bots").iterdir() if p.is_dir()} - {adapter, "__pycache__"}
    found = [
        str(imp)
        for path in sources(f"bots/{adapter}")
        for imp in imports_of(path)
        if imp.imported.split(".")[:2] in (["bots", o] for o in others)
    ]
    assert not found, "\n".join(found)


# What an adapter may import of the core: the contract modules directly in relay/ (messages,
# transport, errors, clock, phone, doors) and the translations (relay.language). Everything
# else it needs from the core is a protocol in relay/doors.py that cercle/ wires to the core.
ADAPTER_MAY_IMPORT = ("relay.language",)


def reaches_past_the_contract(imp: Import) -> bool:
    """Whether an import in ``bots/`` reaches into the core past its contract."""
    parts = imp.imported.split(".")
    if parts[0] != "relay" or len(parts) == 1:
        return parts == ["relay"]
    if any(imp.imported == m or imp.imported.startswith(m + ".") for m in ADAPTER_MAY_IMPORT):
        return False
    return (ROOT / "relay" / parts[1]).is_dir()  # a package of relay/ (storage, service, ...)


def test_adapters_reach_the_core_only_through_its_contract() -> None:
    found = [
        str(imp)
        for path in sources("bots")
        for imp in imports_of(path)
        if reaches_past_the_contract(imp)
    ]
    assert not found, "\n".join(found)


def test_the_contract_rule_catches_an_adapter_reaching_into_the_core() -> None:
    code = (
        "from relay.messages import Inbound\n"
        "from relay.doors import Accept\n"
        "from relay.language.i18n import T\n"
        "from relay.storage.models import Member\n"
        "from relay.service import links\n"
        "import relay.delivery.outbox\n"
        "from relay.inbound.turn import Result\n"
    )
    imports = imports_in(code, "bots.web.routes", "probe.py")
    caught = {i.imported for i in imports if reaches_past_the_contract(i)}
    assert caught == {
        "relay.storage.models",
        "relay.service.links",
        "relay.delivery.outbox",
        "relay.inbound.turn",
    }


def test_the_rules_see_imports_under_type_checking_and_in_functions() -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from relay.service import relay as service\n"
        "def f():\n    import twilio.rest\n"
        "from . import outbox\n"
    )
    seen = {i.imported for i in imports_in(code, "relay.delivery.sender", "probe.py")}
    assert seen == {"typing", "relay.service.relay", "twilio.rest", "relay.delivery.outbox"}


MAX_MODULE_LINES = 600


def test_no_module_is_over_600_lines() -> None:
    """Small modules named for what they hold: past this, a module holds several jobs."""
    found = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for top in ("relay", "bots", "cercle")
        for path in sources(top)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not found, "\n".join(found)
