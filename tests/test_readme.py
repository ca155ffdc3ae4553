"""The README tells the truth: its Python is tested code, its commands and links exist.

Every ```python block is the content (or a contiguous part) of a file that runs under test and
mypy --strict: examples/ (tests/test_examples.py), benchmarks/, or tests/metrics_app.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SOURCES = [
    *sorted((ROOT / "examples").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    ROOT / "tests" / "metrics_app.py",
]
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```$", README, flags=re.DOTALL | re.MULTILINE)


def test_the_readme_has_python_blocks() -> None:
    assert len(PYTHON_BLOCKS) >= 8


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_every_python_block_is_part_of_a_tested_file(block: str) -> None:
    assert any(block in source.read_text() for source in SOURCES), block


# The JavaScript that drives keycloak-js is tested in a browser (examples/signin.html); Wink's own SDK,
# which may not be redistributed, cannot run here.
JS_BLOCKS = [
    block
    for block in re.findall(r"^```js\n(.*?)^```$", README, flags=re.DOTALL | re.MULTILINE)
    if "keycloak" in block
]


@pytest.mark.parametrize("block", JS_BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_every_js_block_is_part_of_a_tested_page(block: str) -> None:
    assert block in (ROOT / "examples" / "signin.html").read_text(), block


def test_the_readme_has_a_js_block() -> None:
    assert JS_BLOCKS


def test_every_script_named_exists_and_is_executable() -> None:
    scripts = set(re.findall(r"\bscripts/([a-z-]+)", README))
    assert {"demo", "test", "build"} <= scripts
    for name in scripts:
        path = ROOT / "scripts" / name
        assert path.is_file(), name
        assert path.stat().st_mode & 0o111, name


def _help(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "wink_middleware", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.mark.slow
def test_every_console_command_and_option_named_exists() -> None:
    commands = set(re.findall(r"wink-middleware (\w+)", README))
    assert commands == {"demo", "emulator", "session", "token", "verify"}
    top = _help()
    for command in commands:
        assert command in top
        options = set(re.findall(r"--[a-z][a-z-]+", _help(command)))
        # The options written next to the command, on its line of the README.
        for line in re.findall(rf"wink-middleware {command}\b[^\n`|]*", README):
            for option in re.findall(r"--[a-z][a-z-]+", line):
                assert option in options, (command, option)


def test_every_local_link_exists() -> None:
    for target in re.findall(r"\]\((?!https?://|#)([^)#]+)", README):
        assert (ROOT / target).exists(), target


def test_every_extra_named_is_declared() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    for extra in set(re.findall(r"`\[([a-z]+)\]`", README)):
        assert re.search(rf"^{extra} = \[", pyproject, flags=re.MULTILINE), extra


def test_no_file_of_the_repository_points_outside_it() -> None:
    # The contract and style notes the project was written from are not part of the repository: a
    # maintainer who clones it could not follow a reference to them. docs/ARCHITECTURE.md is ours.
    outside = re.compile(r"\b(?:DESIGN|STYLE)(?:\.md\b|'s\b| §| section)")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".png", ".ico"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if outside.search(line):
                found.append(f"{name}:{number}")
    assert found == []


def test_the_logging_config_block_is_the_tested_file() -> None:
    # Shown whole, so a user with only the wheel has it; tests/test_examples.py runs the file.
    blocks = re.findall(r"^```json\n(.*?)^```$", README, flags=re.DOTALL | re.MULTILINE)
    assert (ROOT / "examples" / "logging.json").read_text() in blocks
