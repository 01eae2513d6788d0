"""examples/ follows the guide's course: one folder per step of docs/index.md,
in its order, every example listed in examples/README.md, every example
finding this checkout's netkit the same way from any directory, and every
example path and command the docs quote still there to run."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
INDEX = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
COURSE = INDEX.split("## The course", 1)[1].split("\n## ", 1)[0]
PAGE_LINK = re.compile(r"\]\(([\w-]+)\.md\)")

# Files in examples/ that are not examples: the helpers they share, and the
# marker that makes ``examples._common`` importable.
NOT_EXAMPLES = {"_common.py", "__init__.py"}

# The line each example runs before importing netkit (N: how deep it sits).
CHECKOUT_LINE = re.compile(r"^sys\.path\.insert\(0, str\(Path\(__file__\)\.resolve\(\)\.parents\[(\d)\]\)\)", re.MULTILINE)

# Code (not prose) that changes sys.path, and an import of netkit or of the examples' helpers.
TOUCHES_SYS_PATH = re.compile(r"^\s*sys\.path\b", re.MULTILINE)
IMPORTS_NETKIT = re.compile(r"^(?:import netkit|from (?:netkit|examples)[.\s])", re.MULTILINE)

# A path to an example or a tool, as the docs write it.
QUOTED_PATH = re.compile(r"\b((?:examples|tools)/(?:[\w-]+/)*\w+\.py)\b")

# The files that name examples by path: the README, the guide, and the code's comments and docstrings.
NAMING_FILES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "netkit").rglob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted((ROOT / "tools").glob("*.py")),
    *sorted(EXAMPLES.rglob("*.py")),
]

# A bound for an example that hangs on import or on --help, far above what any needs.
PROCESS_TIMEOUT = 60


def example_files() -> list[Path]:
    """Every example, at the top of examples/ or in a step's folder."""
    return sorted(path for path in EXAMPLES.rglob("*.py") if path.name not in NOT_EXAMPLES and "__pycache__" not in path.parts)


def course_steps() -> list[tuple[int, str]]:
    """(number, first page) of each step of the course in docs/index.md."""
    steps = re.split(r"^(\d+)\. ", COURSE, flags=re.MULTILINE)[1:]
    return [(int(number), PAGE_LINK.search(text).group(1)) for number, text in zip(steps[::2], steps[1::2])]


def test_the_folders_are_the_steps_of_the_course_in_its_order() -> None:
    folders = sorted(path.name for path in EXAMPLES.iterdir() if path.is_dir() and path.name != "__pycache__")
    assert folders == [f"{number:02d}-{page}" for number, page in course_steps()]


def test_the_readme_lists_every_example_once_in_course_order() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^- `((?:[\w-]+/)?\w+\.py)`: \S", readme, flags=re.MULTILINE)
    assert sorted(listed) == sorted(str(path.relative_to(EXAMPLES)) for path in example_files())
    folders = [name.split("/")[0] for name in listed if "/" in name]
    assert folders == sorted(folders), "the folders' examples are listed in the course's order"


def test_the_readmes_links_lead_to_files() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links and [link for link in links if not (EXAMPLES / link).is_file()] == []


def test_the_quick_start_stays_at_the_top_of_examples() -> None:
    """README's first command, ``python examples/chat_server.py``, keeps its path."""
    assert (EXAMPLES / "chat_server.py").is_file()


def test_every_example_is_run_by_a_test() -> None:
    """Each example is run as a program by the tests of its topic (DESIGN.md:
    examples are tested by running them and talking to them)."""
    tests = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py") if path != Path(__file__).resolve())
    assert [str(path.relative_to(EXAMPLES)) for path in example_files() if f'"{path.name}"' not in tests and f'/{path.name}"' not in tests] == []


def test_every_example_finds_netkit_the_same_way() -> None:
    """One line puts the checkout's root first on ``sys.path``; nothing else
    touches it, and the shared helpers do not either."""
    odd = {}
    for path in example_files():
        source = path.read_text(encoding="utf-8")
        if not IMPORTS_NETKIT.search(source):
            continue  # an example with plain sockets only
        depth = len(path.relative_to(EXAMPLES).parts)
        lines = CHECKOUT_LINE.findall(source)
        if lines != [str(depth)] or len(TOUCHES_SYS_PATH.findall(source)) != 1:
            odd[str(path.relative_to(ROOT))] = lines
    assert odd == {}
    assert TOUCHES_SYS_PATH.findall((EXAMPLES / "_common.py").read_text(encoding="utf-8")) == []


def test_every_example_imports_from_any_directory_without_an_installed_netkit(tmp_path: Path) -> None:
    """``-I -S``: no PYTHONPATH, no site-packages (so no installed netkit), and
    a working directory outside the checkout; the example's imports must
    still find the checkout's netkit and examples/_common.py."""
    probe = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='example'); print(getattr(sys.modules.get('netkit'), '__file__', ''))"
    running = {
        path: subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", probe, str(path)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for path in example_files()
    }
    failed = {}
    for path, process in running.items():
        out, err = process.communicate(timeout=PROCESS_TIMEOUT)
        expected = str(ROOT / "netkit") if IMPORTS_NETKIT.search(path.read_text(encoding="utf-8")) else ""
        if process.returncode != 0 or not out.strip().startswith(expected):
            failed[str(path.relative_to(ROOT))] = err.strip().splitlines()[-1:] or out
    assert failed == {}


def test_pyflakes_finds_nothing_in_the_examples_and_tools() -> None:
    pytest.importorskip("pyflakes")
    result = subprocess.run(
        [sys.executable, "-m", "pyflakes", "examples", "tools"], cwd=ROOT, capture_output=True, text=True, timeout=PROCESS_TIMEOUT
    )
    assert result.stdout + result.stderr == ""


def test_every_example_or_tool_path_the_project_names_exists() -> None:
    missing = {}
    for file in NAMING_FILES:
        named = set(QUOTED_PATH.findall(file.read_text(encoding="utf-8")))
        gone = sorted(name for name in named if not (ROOT / name).is_file())
        if gone:
            missing[str(file.relative_to(ROOT))] = gone
    assert missing == {}


@pytest.mark.parametrize("page", PAGE_LINK.findall(COURSE))
def test_every_page_of_the_course_names_an_example_to_run(page: str) -> None:
    text = (ROOT / "docs" / f"{page}.md").read_text(encoding="utf-8")
    assert [name for name in QUOTED_PATH.findall(text) if name.startswith("examples/")]


def quoted_commands() -> list[tuple[str, list[str]]]:
    """Every ``python examples/...`` or ``python tools/...`` command in the
    README, the guide and the scripts' own docstrings, as (where, the
    script and its arguments)."""
    commands = []
    for file in NAMING_FILES:
        for line in re.findall(r'\bpython ((?:examples|tools)/[^`\n#&|"]*)', file.read_text(encoding="utf-8")):
            commands.append((f"{file.relative_to(ROOT)}: {line.strip()}", shlex.split(line)))
    return commands


COMMANDS = quoted_commands()


def test_the_docs_quote_commands() -> None:
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_a_quoted_command_names_a_script_and_options_it_has(where: str, argv: list[str]) -> None:
    """The script is there, and knows every option the docs pass it (the
    tests of each topic run the commands themselves)."""
    script, *arguments = argv
    assert (ROOT / script).is_file(), where
    options = [argument.split("=", 1)[0] for argument in arguments if argument.startswith("--")]
    if not options:
        return
    usage = help_text(script)
    assert [option for option in options if not re.search(rf"(^|[\s,]){re.escape(option)}(?![\w-])", usage)] == [], where


@functools.cache
def help_text(script: str) -> str:
    """What ``python SCRIPT --help`` prints (once per script: several commands share one)."""
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=PROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr
    return result.stdout
