"""`mnist-bench --help` and each command's help end with real examples; `--version` says what runs.

TensorFlow-free: the examples are parsed, never run.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bench import __version__, cli

REPO = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch")


def _subparsers():
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a.choices, dict))
    return parser, action.choices


def _example_lines(help_text: str) -> list[str]:
    tail = help_text[help_text.rindex("examples:\n") :]
    lines = tail.splitlines()[1:]
    return [re.sub(r"\s+#\s.*$", "", line).strip() for line in lines if line.strip()]


def test_every_command_has_examples():
    _, subs = _subparsers()
    assert set(cli.EXAMPLES) == {"mnist-bench", *subs}


@pytest.mark.parametrize("name", ["mnist-bench", *_subparsers()[1]])
def test_help_ends_with_examples_that_parse(name):
    parser, subs = _subparsers()
    command = parser if name == "mnist-bench" else subs[name]
    text = command.format_help()
    examples = _example_lines(text)
    assert 2 <= len(examples) <= 3
    assert text.rstrip().endswith(cli.EXAMPLES[name][-1].rstrip())  # examples come last
    if name != "mnist-bench":
        assert any(e.startswith(f"mnist-bench {name}") for e in examples)
    for example in examples:
        argv = shlex.split(example)
        assert argv[0] == "mnist-bench"
        args = cli.build_parser().parse_args(argv[1:])  # raises SystemExit on a bad example
        assert args.func


def test_version_prints_mnist_bench_and_framework_versions(capsys, monkeypatch):
    fake = {"tensorflow": "2.99.0", "keras": "3.99.0", "jax": "0.9.9", "jaxlib": "0.9.8"}

    def version(package):
        if package in fake:
            return fake[package]
        raise cli.metadata.PackageNotFoundError(package)

    monkeypatch.setattr(cli.metadata, "version", version)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"mnist-bench {__version__} (Python ")
    assert lines[1:] == [
        "tensorflow 2.99.0",
        "keras 3.99.0",
        "other Keras backends: jax 0.9.9, jaxlib 0.9.8",
    ]


def test_version_names_missing_packages(monkeypatch):
    def version(package):
        raise cli.metadata.PackageNotFoundError(package)

    monkeypatch.setattr(cli.metadata, "version", version)
    assert cli.version_text().splitlines()[1:] == [
        "tensorflow not installed",
        "keras not installed",
        "other Keras backends: none installed (jax, torch)",
    ]


def test_version_imports_no_framework():
    code = (
        "import json, sys\n"
        "from bench import cli\n"
        "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("mnist-bench ")
    assert json.loads(lines[-1]) == []
