"""The README and docs/ stay true: links, commands, flags, profiles and the copied findings.

Fast and TensorFlow-free. Each checker returns a list of problems; the tests at the bottom feed
each one a bad snippet to show it can fail.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from bench.cli import build_parser
from bench.plan.matrix import profile_names
from tests.conftest import load_script

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_BYTES = 5 * 1024  # the README is the first screen; topics go to docs/

# Flags the docs show in a bare code span (`--flag`) that belong to other tools, not mnist-bench.
OTHER_TOOL_FLAGS = {
    "--describe": "python -m bench.gate_probe",
    "--scenarios": "scripts/prove_ab_gate.py",
    "--runs": "scripts/prove_ab_gate.py, scripts/ab_margin.py",
    "--time-sized": "scripts/prove_ab_gate.py",
    "--slower": "scripts/ab_margin.py",
}
# Documented from branches being merged alongside this one (issue 13: the A/B gate; issue 14: the
# backend axis). Delete each entry once its branch has landed: the checks then cover it as usual.
PENDING_FLAGS: dict[str, set[str]] = {}
PENDING_PROFILES: set[str] = set()

COMMAND = re.compile(r"(?:^|(?<=[\s(`'\"]))(?:mnist-bench|python3? -m bench)(?=\s|$)")
SEPARATORS = {"&&", "||", "|", ";", "#", ">", "2>", "<"}
FLAG = re.compile(r"^(-{1,2}[A-Za-z][A-Za-z0-9-]*)")
SUBCOMMAND = re.compile(r"[a-z][a-z-]*")
PROFILE = re.compile(r"--profile[ =]+([^\s`'\"|\\]+)")
PROFILE_NAME = re.compile(r"[a-z0-9_-]+")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:img|a)\s[^>]*?(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
FENCE = re.compile(r"^\s*(```|~~~)")


# --- reading markdown -----------------------------------------------------------------------


def split_code(text: str) -> tuple[str, list[str]]:
    """(the prose with code removed, every piece of code: fenced-block lines and inline spans)."""
    prose, code, fenced = [], [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            prose.append("")
            continue
        if fenced:
            code.append(re.sub(r"(^|\s)#.*$", "", line))  # a shell/TOML/YAML comment is prose
            prose.append("")
        else:
            prose.append(line)
    rest = "\n".join(prose)
    spans = re.compile(r"(`+)(.+?)\1", re.S)
    code += [m.group(2).replace("\n", " ").strip() for m in spans.finditer(rest)]
    return spans.sub(" ", rest), code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation out, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML such as <sub>
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a markdown text, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for line in without_fences(text).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def without_fences(text: str) -> str:
    """The text without fenced blocks (a '#' line in a code block is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        lines.append("" if fenced else line)
    return "\n".join(lines)


# --- the checks -----------------------------------------------------------------------------


def check_links(text: str, page: Path, repo: Path = REPO) -> list[str]:
    """Relative links and images that point to a missing file, outside the repository, or to a
    heading that does not exist."""
    prose, _ = split_code(text)
    problems = []
    for target in [*LINK.findall(prose), *HTML_LINK.findall(prose)]:
        if SCHEME.match(target) or target.startswith("//"):
            continue  # http(s), mailto: not checked here
        path_part, _, fragment = target.partition("#")
        if not path_part:  # an anchor on this page
            if fragment not in anchors(text):
                problems.append(f"{page.name}: {target}: no such heading on this page")
            continue
        dest = (page.parent / path_part).resolve()
        if not dest.is_relative_to(repo.resolve()):
            problems.append(f"{page.name}: {target} points outside the repository")
        elif not dest.exists():
            problems.append(f"{page.name}: {target} does not exist")
        elif (
            fragment
            and dest.suffix == ".md"
            and fragment not in anchors(dest.read_text(encoding="utf-8"))
        ):
            problems.append(f"{page.name}: {target}: no heading #{fragment} in {dest.name}")
    return problems


@cache
def parser_options() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """(the top-level options, {subcommand: its options}) of the real parser."""
    parser = build_parser()
    top = frozenset(s for a in parser._actions for s in a.option_strings)
    sub_action = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    subs = {
        name: frozenset(s for a in sub._actions for s in a.option_strings)
        for name, sub in sub_action.choices.items()
    }
    return top, subs


def commands(code: str) -> list[list[str]]:
    """The tokens after each `mnist-bench` / `python -m bench` in a piece of code."""
    out = []
    for m in COMMAND.finditer(code):
        tokens = []
        for token in code[m.end() :].split():
            if token in SEPARATORS or token.startswith("#") or COMMAND.match(token):
                break
            if token in {"mnist-bench", "python", "python3"}:
                break  # the next command begins (found by finditer on its own)
            tokens.append(token)
        out.append(tokens)
    return out


def check_command(tokens: list[str]) -> list[str]:
    """A command's subcommand and flags against the parser."""
    top, subs = parser_options()
    sub, seen_positional, flags = None, False, []
    for token in tokens:
        clean = token.strip("[](){},;:'\"`").rstrip(".")
        m = FLAG.match(clean)
        if m:
            flags.append(m.group(1))
        elif not seen_positional and clean and not clean.startswith(("<", "$", "~", ".", "…")):
            seen_positional = True
            if SUBCOMMAND.fullmatch(clean):
                sub = clean
                if sub not in subs:
                    return [f"`mnist-bench {sub}`: no such command (have: {', '.join(subs)})"]
        elif not seen_positional:
            seen_positional = True  # a placeholder (…, <cmd>): the command is not named
    allowed = top | (subs[sub] if sub else frozenset().union(*subs.values()))
    pending = PENDING_FLAGS.get(sub, set()) if sub else set[str]().union(*PENDING_FLAGS.values())
    where = f"mnist-bench {sub}" if sub else "mnist-bench"
    return [f"`{where}` has no option {f}" for f in flags if f not in allowed and f not in pending]


def check_commands(text: str) -> list[str]:
    """Every `mnist-bench …` command in the code of a page, and every bare `--flag` span."""
    _, code = split_code(text)
    problems = []
    for piece in code:
        for tokens in commands(piece):
            problems += check_command(tokens)
        if piece.startswith("--") and not COMMAND.search(piece):  # `-e3` is an id tag
            problems += check_bare_flags(piece)
    return problems


def check_bare_flags(span: str) -> list[str]:
    """A span such as `--set batch_size=64` or `--list --shard I/N`: flags of some command."""
    top, subs = parser_options()
    known = top.union(*subs.values()).union(*PENDING_FLAGS.values())
    flags = [m.group(1) for t in span.split() if (m := FLAG.match(t)) and t.startswith("--")]
    return [
        f"`{span}`: {f} is no option of mnist-bench (another tool's? add it to OTHER_TOOL_FLAGS)"
        for f in flags
        if f not in known and f not in OTHER_TOOL_FLAGS
    ]


def check_profiles(text: str) -> list[str]:
    """Every `--profile NAME` in the code of a page names a shipped profile."""
    _, code = split_code(text)
    shipped = set(profile_names()) | PENDING_PROFILES
    names = [
        m.group(1).rstrip(".,;)")
        for piece in code
        for m in PROFILE.finditer(piece)
        if PROFILE_NAME.fullmatch(m.group(1).rstrip(".,;)"))  # not NAME, FILE.toml, a path
    ]
    return [
        f"--profile {n}: not shipped (have: {', '.join(profile_names())})"
        for n in names
        if n not in shipped
    ]


# "1.23× [1.07–1.38]" and a verdict word in the same clause after it: right after a colon, or with
# nothing in between that starts another figure, closes the parenthesis it sits in or ends the
# clause ("1.99× and 1.15× [1.02–1.28]: JAX faster, torch slower" gives 1.15× no verdict).
RATIO_CLAIM = re.compile(
    r"(\d+\.\d+)× \[(\d+\.\d+)–(\d+\.\d+)\]"
    r"(?=(?:: |[^×\[\]);.:]{0,25}?)\b(slower|faster|higher throughput|lower throughput)\b)"
)
ABOVE = ("slower", "higher throughput")


def check_stated_verdicts(text: str) -> list[str]:
    """A ratio a page calls slower/faster (or higher/lower throughput) has its whole interval
    beyond 1; the run's own floor may ask for more, and the page must then say it (method.md)."""
    problems = []
    for m in RATIO_CLAIM.finditer(" ".join(text.split())):
        lo, hi, word = float(m.group(2)), float(m.group(3)), m.group(4)
        if (lo <= 1.0) if word in ABOVE else (hi >= 1.0):
            problems.append(f"{m.group(0)} is called {word}, but its interval reaches 1")
    return problems


# --- the pages as they are ------------------------------------------------------------------


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_links_and_images_point_to_files_that_exist(page):
    assert check_links(page.read_text(encoding="utf-8"), page) == []


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_commands_and_flags_exist_in_the_parser(page):
    assert check_commands(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_profiles_named_are_shipped(page):
    assert check_profiles(page.read_text(encoding="utf-8")) == []


def test_readme_findings_are_the_reference_reports():
    script = load_script("readme_findings")
    report = script.REPORT.read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    assert script.current_block(readme) == script.expected_block(report), (
        "README findings differ from reports/reference/REPORT.md: "
        "run `python scripts/readme_findings.py`"
    )
    assert script.main(["--check"]) == 0


def test_readme_first_screen():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode()) <= README_MAX_BYTES, "move detail to docs/"
    head = text[: text.index("## Using the CLI")]
    assert "python3 -m pip install nox && nox -s bench" in head
    # PEP 668 systems (Ubuntu 24.04, Debian 13) refuse the pip line; these run nox without it.
    assert "pipx run nox -s bench" in head and "uvx nox -s bench" in head
    assert "nox -s tests" in head
    assert re.search(r"!\[[^\]]+\]\(reports/reference/[^)]+\.png\)", head)
    assert "(reports/reference/REPORT.md)" in head
    assert "<!-- findings:start -->" in head


def test_every_docs_page_is_linked_from_the_readme():
    text = README.read_text(encoding="utf-8")
    orphans = [p.name for p in PAGES[1:] if f"(docs/{p.name})" not in text]
    assert orphans == []


# --- each check can fail --------------------------------------------------------------------


CLAIM_PAGES = [*PAGES, *sorted((REPO / "reports").glob("*/README.md"))]


@pytest.mark.parametrize("page", CLAIM_PAGES, ids=_page_id)
def test_ratios_called_slower_or_faster_have_intervals_beyond_1(page):
    """Bug: a page calling a ratio slower or faster whose interval reaches 1 (typed by hand, or
    kept from an older, point-only rule)."""
    assert check_stated_verdicts(page.read_text(encoding="utf-8")) == []


def test_verdict_check_catches_a_real_call_on_an_interval_that_reaches_1():
    assert check_stated_verdicts("torch's 1.15× [0.98–1.28], slower.") != []
    assert check_stated_verdicts("0.80× [0.69–1.02] at 512, faster") != []
    assert check_stated_verdicts("12.43× [0.98–14.87] the baseline's 14,998 (higher throughput)")
    assert check_stated_verdicts("| 0.27× [0.22–0.35] faster | 1.99× [1.49–2.54] slower |") == []
    # A verdict that belongs to the next clause or figure is not this one's.
    assert check_stated_verdicts("unresolved (0.95× [0.78–1.13]) and is faster here") == []
    assert check_stated_verdicts("1.10× [0.80–1.48], 1.23× [1.07–1.38] slower") == []
    assert check_stated_verdicts("1.15× [0.98–1.28]: JAX faster, torch slower") == []
    assert check_stated_verdicts("1.15× [0.98–1.28]: slower") != []


def test_link_check_catches_missing_files_images_anchors_and_escapes(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Step time\n", encoding="utf-8")
    page = tmp_path / "README.md"
    good = "[a](docs/a.md) [b](docs/a.md#step-time) [web](https://example.com) [top](#top)\n# Top"
    assert check_links(good, page, tmp_path) == []
    bad = (
        '[gone](docs/gone.md)\n![plot](reports/none.png)\n<img src="x.png">\n'
        "[anchor](docs/a.md#no-such-heading)\n[out](../../etc/passwd)\n"
    )
    problems = check_links(bad, page, tmp_path)
    assert len(problems) == 5, problems
    # Links inside code are not links.
    assert check_links("`[x](missing.md)`\n```\n![y](missing.png)\n```", page, tmp_path) == []


def test_slugs_follow_github():
    assert slug("Stored-baseline mode (`--baseline`, and the fallback)") == (
        "stored-baseline-mode---baseline-and-the-fallback"
    )
    assert slug("The A/A control and the noise floor") == "the-aa-control-and-the-noise-floor"
    assert anchors("# X\n## X\n```\n# not a heading\n```") == {"x", "x-1"}


def test_command_check_catches_unknown_commands_and_flags():
    assert "`mnist-bench reprot`: no such command" in check_commands("`mnist-bench reprot x`")[0]
    assert check_commands("`mnist-bench run --profile quick --no-such-flag`") == [
        "`mnist-bench run` has no option --no-such-flag"
    ]
    assert check_commands("`mnist-bench merge a.jsonl --resume`") == [  # run's flag, not merge's
        "`mnist-bench merge` has no option --resume"
    ]
    assert check_commands(
        "```bash\npip install -e . && mnist-bench report x.jsonl --fromat csv\n```"
    )
    assert check_commands("`python -m bench regress --baselin x.json`")
    assert check_commands("Use `--not-a-flag` to …")  # a bare flag no command has
    good = (
        "`mnist-bench run ... --shard I/N` `mnist-bench merge A.jsonl ... -o ALL.jsonl [--force]`\n"
        "`mnist-bench: error: …` `mnist-bench --debug …` `--set batch_size=64,256`\n"
        "`nox -s benchmark -- --benchmark-compare` `pip download --no-deps` `--runs 8`\n"
        "```yaml\n- run: pip install -e . && mnist-bench run --profile full --out out --no-report\n```"
    )
    assert check_commands(good) == []


def test_profile_check_catches_profiles_that_are_not_shipped():
    assert check_profiles("`mnist-bench run --profile nosuch`") == [
        f"--profile nosuch: not shipped (have: {', '.join(profile_names())})"
    ]
    assert check_profiles("`nox -s bench -- --profile sead`")
    assert (
        check_profiles("`--profile NAME|FILE.toml` `--profile my/own.toml` `--profile seed`") == []
    )


def test_findings_check_fails_on_a_stale_block_and_the_script_fixes_it(tmp_path, capsys):
    script = load_script("readme_findings")
    readme = tmp_path / "README.md"
    stale = README.read_text(encoding="utf-8").replace("Highest throughput", "Top throughput", 1)
    readme.write_text(stale, encoding="utf-8")
    args = ["--readme", str(readme), "--report", str(script.REPORT)]
    assert script.main(["--check", *args]) == 1
    assert "python scripts/readme_findings.py" in capsys.readouterr().err
    assert script.main(args) == 0
    assert script.main(["--check", *args]) == 0
    assert readme.read_text(encoding="utf-8") == README.read_text(encoding="utf-8")


def test_findings_script_extracts_the_first_bullets_of_the_findings_section():
    script = load_script("readme_findings")
    report = "# R\n\n## Findings\n\n- one\n- two\n- three\n\n## Variants\n\n- not a finding\n"
    assert script.extract_findings(report, 2) == ["- one", "- two"]
    assert script.extract_findings(report, 9) == ["- one", "- two", "- three"]
    with pytest.raises(script.FindingsError):
        script.extract_findings("# R\n\n## Variants\n", 3)
    with pytest.raises(script.FindingsError):
        script.current_block("no markers here")


def test_the_verdict_rule_is_stated_in_the_words_the_code_uses_and_applied_as_stated():
    """Bugs: docs/method.md keeping a condition the code's VERDICT_RULE no longer states, a report
    header that types its own rule (or the old point-only wording) instead of VERDICT_RULE, or
    ratio_verdict calling a point beyond the floor real while its interval reaches into it."""
    from bench import stats
    from bench.records import read_records
    from bench.report.markdown import render_markdown

    condition = re.search(r"only when (.+?)(?: \(|;|$)", stats.VERDICT_RULE)
    assert condition, "VERDICT_RULE no longer says 'only when …': update this test with it"
    method = " ".join((REPO / "docs" / "method.md").read_text().replace("**", "").split())
    assert condition.group(1) in method, f"docs/method.md does not state {condition.group(1)!r}"
    report = render_markdown(read_records(REPO / "tests" / "fixtures" / "records.jsonl"))
    assert stats.VERDICT_RULE in report
    assert "excludes no change *and*" not in report
    # What the stated condition means, for a ratio with a 5% floor: the point 1.10 lies beyond it
    # in both cases; only the interval that clears 1.05 as a whole is called real.
    assert stats.ratio_verdict(stats.Interval(1.10, 1.06, 1.14), 0.05) == "slower"
    assert not stats.is_difference(stats.ratio_verdict(stats.Interval(1.10, 1.04, 1.16), 0.05))
