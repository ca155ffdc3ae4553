"""The layer rules, read from the source: one test per rule (CONTRIBUTING, "Layout").

Every ``import`` and ``from ... import`` of a module counts, wherever it is written (at the top,
under ``TYPE_CHECKING``, inside a function), since each is a dependency a change would have to keep.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "wink_middleware"
HTTP_LIBRARIES = ("httpx", "httpcore", "h11", "urllib3", "requests", "aiohttp")
#: The parts at the bottom: every layer may use them; they use no layer.
PARTS = (
    "_clock",
    "_config",
    "_events",
    "_exceptions",
    "_get_profile",
    "_logging",
    "_profile",
    "_session",
    "_session_urls",
    "_token_rule",
    "_version",
)


def imported(source: str) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every import in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the package uses absolute imports only"
            assert node.module is not None
            yield node.lineno, node.module
            # `from wink_middleware import _engine` names a module too.
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def modules(*folders: str) -> list[Path]:
    """The package's modules under ``folders`` (each a folder or a top-level module's name)."""
    found: list[Path] = []
    for folder in folders:
        path = PACKAGE / folder
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return found


def violations(
    files: list[Path], forbidden: tuple[str, ...], exempt: tuple[str, ...] = ()
) -> list[str]:
    """Each import in ``files`` of a module in (or under) ``forbidden``, as ``file:line module``."""
    found = []
    for path in files:
        if path.name in exempt:
            continue
        for line, name in imported(path.read_text()):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                where = path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE) else path
                found.append(f"{where}:{line} imports {name}")
    return sorted(set(found))


def layer(*names: str) -> tuple[str, ...]:
    return tuple(f"wink_middleware.{name}" for name in names)


ADAPTERS = layer("_adapters", "django", "fastapi", "prometheus", "otel", "testing", "_cli")


def test_routing_imports_no_engine() -> None:
    assert violations(modules("_routing"), layer("_engine")) == []


def test_routing_imports_no_shared_tier_adapter_or_http_library() -> None:
    forbidden = (*layer("_shared"), *ADAPTERS, *HTTP_LIBRARIES)
    assert violations(modules("_routing"), forbidden) == []


def test_the_engine_imports_no_routing() -> None:
    assert violations(modules("_engine"), layer("_routing")) == []


def test_the_engine_imports_no_adapter() -> None:
    assert violations(modules("_engine"), ADAPTERS) == []


def test_the_engine_imports_an_http_library_in_its_client_module_only() -> None:
    assert violations(modules("_engine"), HTTP_LIBRARIES, exempt=("client.py",)) == []


def test_the_shared_tier_imports_no_routing_adapter_or_http_library() -> None:
    forbidden = (*layer("_routing"), *ADAPTERS, *HTTP_LIBRARIES)
    assert violations(modules("_shared"), forbidden) == []


def test_the_parts_import_no_layer() -> None:
    forbidden = layer(
        "_routing", "_engine", "_shared", *(n.removeprefix("wink_middleware.") for n in ADAPTERS)
    )
    assert violations(modules(*PARTS), forbidden) == []


def test_every_module_is_in_a_layer_or_a_part() -> None:
    # A new top-level module must be placed: in a layer's folder, or named a part above.
    placed = {*PARTS, "__init__", "__main__", "_cli", "fastapi", "otel", "prometheus"}
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top - placed == set()


@pytest.mark.parametrize(
    "source",
    [
        "from wink_middleware._engine.core import ColdToken",
        "import wink_middleware._engine.core",
        "from wink_middleware import _engine",
        "def f():\n    from wink_middleware._engine import flow",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from wink_middleware._engine.core import ColdToken",
    ],
    ids=["from", "import", "from-package", "in-a-function", "type-checking"],
)
def test_the_rule_reader_sees_every_form_of_import(tmp_path: Path, source: str) -> None:
    module = tmp_path / "broken.py"
    module.write_text(source)
    assert violations([module], layer("_engine")) != []
    assert violations([module], layer("_routing")) == []
