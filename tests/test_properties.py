"""Property-based: any input to the profile loader, --set, --shard or the record reader either
works or raises that module's user-error exception (one `mnist-bench: error:` line, exit 2).

Never another exception, never a hang: every example runs under a hard time limit (SIGALRM),
besides hypothesis' own deadline.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import string
import tempfile
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import cli, records
from bench.plan import matrix as plan_matrix
from bench.plan.matrix import Matrix, MatrixError, apply_overrides, build_matrix, load_profile
from bench.plan.shard import ShardError, parse_shard, select_shard
from bench.plan.variant import FIELD_NAMES
from bench.records import RecordError, RecordWarning
from bench.report import compare, markdown

FIXTURE = Path(__file__).parent / "fixtures" / "records.jsonl"
LIMIT_S = 10  # far above any example's time; only a hang reaches it
# 200 keeps the suite fast; MNIST_BENCH_EXAMPLES=5000 searches harder.
MAX_EXAMPLES = int(os.environ.get("MNIST_BENCH_EXAMPLES", "200"))
EXAMPLES = settings(
    max_examples=MAX_EXAMPLES,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow],
)


@contextlib.contextmanager
def time_limit(seconds: float = LIMIT_S) -> Iterator[None]:
    """Fail (TimeoutError) an example that runs longer than `seconds`, e.g. a loop that hangs."""

    def expired(*_: Any) -> None:
        raise TimeoutError(f"example ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# TOML's values: every scalar type, huge and non-finite numbers, arrays and tables.
SCALARS = (
    st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([0, 1, 2, 32, 60000, 10**4, 2**31, 2**63 - 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.text(max_size=20)
    | st.sampled_from(["per_epoch", "split", "cpu", "gpu", "float32", "cross", "mirrored"])
    | st.datetimes()
    | st.dates()
)
KEYS = st.sampled_from([*FIELD_NAMES, *plan_matrix.RUN_KEYS, "mode", "other"]) | st.text(max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
SECTIONS = st.sampled_from([*plan_matrix.SECTIONS, "axis"])
SPECS = st.dictionaries(
    SECTIONS, st.dictionaries(KEYS, VALUES, max_size=5) | VALUES, max_size=4
) | st.dictionaries(
    st.just("axes"),
    st.dictionaries(st.sampled_from(FIELD_NAMES), st.lists(SCALARS, max_size=6), max_size=12),
)


@EXAMPLES
@given(spec=SPECS)
def test_build_matrix_accepts_or_raises_matrix_error(spec):
    with time_limit():
        try:
            m = build_matrix("gen", spec)
        except MatrixError as exc:
            assert "\n" not in str(exc)
        else:
            assert isinstance(m, Matrix) and 1 <= len(m.variants()) <= plan_matrix.MAX_VARIANTS


TOML_PIECES = st.sampled_from(
    [
        "[run]\n",
        "[axes]\n",
        "[matrix]\n",
        "[baseline]\n",
        "run = 5\n",
        "repeats = 2\n",
        "timeout_s = inf\n",
        "batch_size = [32, 64]\n",
        "batch_size = 99999999999999999999999\n",
        "validation = ['split']\n",
        "mode = 'cross'\n",
        "epochs = 1979-05-27\n",
        "x = [[[[1]]]]\n",
        "seed = nan\n",
        'precision = "float16"\n',
        "= \n",
        "[[axes]]\n",
        "\xe9\n",
    ]
)
PROFILE_BYTES = (
    st.binary(max_size=200)
    | st.lists(TOML_PIECES, max_size=8).map(lambda parts: "".join(parts).encode())
    | st.lists(TOML_PIECES, max_size=8).map(lambda parts: "".join(parts).encode("latin-1"))
)


@EXAMPLES
@given(content=PROFILE_BYTES)
def test_load_profile_on_any_bytes_accepts_or_raises_matrix_error(content):
    with tempfile.TemporaryDirectory() as tmp, time_limit():
        path = Path(tmp) / "gen.toml"
        path.write_bytes(content)
        try:
            load_profile(str(path))
        except MatrixError as exc:
            assert "\n" not in str(exc)


SET_TEXT = st.text(max_size=40) | st.builds(
    lambda key, values: f"{key}={','.join(values)}",
    st.sampled_from([*FIELD_NAMES, *plan_matrix.RUN_KEYS, "mode", "colour", ""]),
    st.lists(
        st.sampled_from(["1", "0", "-1", "32", "inf", "nan", "1e400", "9" * 30, "true", "[1]"])
        | st.text(string.printable, max_size=8),
        max_size=4,
    ),
)


@EXAMPLES
@given(overrides=st.lists(SET_TEXT, min_size=1, max_size=3))
def test_set_overrides_accept_or_raise_matrix_error(overrides):
    base = load_profile("quick")
    with time_limit():
        try:
            apply_overrides(base, overrides)
        except MatrixError as exc:
            assert "\n" not in str(exc)


SHARD_TEXT = (
    st.text(max_size=20)
    | st.builds(lambda i, n: f"{i}/{n}", st.integers(-5, 10**25), st.integers(-5, 10**25))
    | st.builds(lambda i, n: f"{i}/{n}", st.integers(0, 12), st.integers(0, 12))
    | st.builds(lambda n: f"1/{'9' * n}", st.integers(1, 6000))
)


@EXAMPLES
@given(spec=SHARD_TEXT)
def test_shard_specs_are_parsed_or_refused_quickly(spec):
    variants = load_profile("default").variants()
    with time_limit():
        try:
            index, count = parse_shard(spec)
            shard = select_shard(variants, spec)
        except ShardError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 200
        else:
            assert (shard.index, shard.count) == (index, count) and shard.variants


# Records: the fixture's lines with one field anywhere replaced by any JSON value, cut, or garbage.
LINES = FIXTURE.read_text().splitlines()
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:2]):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_line(draw: Any) -> str:
    record = json.loads(draw(st.sampled_from(LINES)))
    paths = _paths(record)
    path = draw(st.sampled_from(paths))
    target = record
    for key in path[:-1]:
        target = target[key]
    if draw(st.booleans()):
        target[path[-1]] = draw(JSON_VALUES)
    elif isinstance(target, dict):
        del target[path[-1]]
    return json.dumps(record)


LINE = (
    st.sampled_from(LINES)
    | mutated_line()
    | st.sampled_from(LINES).map(lambda line: line[: len(line) // 2])
    | st.text(max_size=30)
    | JSON_VALUES.map(json.dumps)
)


@EXAMPLES
@given(lines=st.lists(LINE, min_size=0, max_size=4), newline=st.booleans())
def test_record_reader_accepts_or_raises_record_error_and_readers_never_fail(lines, newline):
    text = "\n".join(lines) + ("\n" if newline else "")
    with tempfile.TemporaryDirectory() as tmp, time_limit(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordWarning)
        path = Path(tmp) / "gen.jsonl"
        path.write_text(text)
        try:
            got = records.read_records(path)
        except RecordError as exc:
            assert str(path) in str(exc)
            return
        # Whatever the reader accepts, every reader of records can use.
        markdown.render_markdown(got)
        compare.render_compare(got, got, "a", "b")
        records.missing_shards(got)


@settings(max_examples=MAX_EXAMPLES // 5, deadline=timedelta(seconds=10))
@given(
    argv=st.one_of(
        st.lists(SET_TEXT, min_size=1, max_size=2).map(
            lambda sets: ["run", "--profile", "quick", *(f"--set={s}" for s in sets), "--list"]
        ),
        SHARD_TEXT.map(lambda s: ["run", "--profile", "quick", f"--shard={s}", "--list"]),
    )
)
def test_cli_exits_0_or_2_with_one_error_line(argv):
    out, err = io.StringIO(), io.StringIO()
    with time_limit(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    lines = err.getvalue().splitlines()
    assert (code, lines) == (0, []) or (
        code == 2 and len(lines) == 1 and lines[0].startswith("mnist-bench: error: ")
    ), (argv, code, lines)


@pytest.mark.parametrize("content", [b"run = 5\n", b"\xff\xfe", b"[axes]\nbatch_size = {a=1}\n"])
def test_cli_on_generated_profiles_exits_2_with_one_line(tmp_path, capsys, content):
    path = tmp_path / "gen.toml"
    path.write_bytes(content)
    assert cli.main(["run", "--profile", str(path), "--list"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("mnist-bench: error: ")
