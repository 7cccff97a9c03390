"""Render a REPORT.md as GitHub does and measure, in headless Chromium, which tables scroll sideways.

    python scripts/check_report_width.py reports/reference/REPORT.md [--css github-markdown.css]
        [--screenshot out.png]

GitHub's content column is 1012 px wide; its CSS makes a table `display: block; width:
max-content; max-width: 100%; overflow: auto`, so a table whose columns cannot shrink to that
width scrolls. This renders the markdown with Python-Markdown (tables extension) inside
`.markdown-body` with github-markdown-css (npm package `github-markdown-css`), loads it in
Chromium at 1280 px and prints each table's scroll width against its box. Exit 1 if a table
outside a <details> block scrolls. Needs `chromium` (apt) and `markdown` (pip); a dev check, not CI.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import markdown

CONTENT_PX = 1012
PROBE = """<script>
const out = [...document.querySelectorAll('table')].map((t, i) => ({
  index: i, inDetails: !!t.closest('details'), scrollWidth: t.scrollWidth,
  clientWidth: t.clientWidth, header: t.querySelector('th') ? t.querySelector('th').textContent : ''}));
document.body.setAttribute('data-tables', JSON.stringify(out));
</script>"""


def render_html(md_text: str, css: str) -> str:
    # GitHub renders <details> blocks' inner markdown; Python-Markdown needs md_in_html for that.
    md_text = md_text.replace("<details>", '<details markdown="1">')
    body = markdown.markdown(md_text, extensions=["tables", "md_in_html"])
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{css}</style>"
        f"<style>.markdown-body{{box-sizing:border-box;max-width:{CONTENT_PX}px;margin:0 auto;"
        "padding:0}</style></head>"
        f"<body><article class='markdown-body'>{body}</article>{PROBE}</body></html>"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument(
        "--css", required=True, help="github-markdown.css (npm github-markdown-css)"
    )
    parser.add_argument("--screenshot", help="also save a PNG of the rendered page")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("chromium not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    html = render_html(Path(args.report).read_text(), Path(args.css).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html)
        base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,4000"]
        dom = subprocess.run(
            [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, check=True
        ).stdout
        if args.screenshot:
            subprocess.run(
                [*base, f"--screenshot={Path(args.screenshot).resolve()}", page.as_uri()],
                capture_output=True,
                check=True,
            )
    found = re.search(r'data-tables="([^"]*)"', dom)
    if not found:
        print("could not read the measurement from the page", file=sys.stderr)
        return 2
    tables = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    bad = 0
    for t in tables:
        scrolls = t["scrollWidth"] > t["clientWidth"]
        where = "inside <details>" if t["inDetails"] else "on the page"
        verdict = "SCROLLS" if scrolls else "fits"
        print(
            f"table {t['index']} ({where}, first column {t['header']!r}): "
            f"{t['scrollWidth']} px content in a {t['clientWidth']} px box: {verdict}"
        )
        bad += scrolls and not t["inDetails"]
    print(f"{bad} table(s) outside <details> scroll sideways at {CONTENT_PX} px")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
