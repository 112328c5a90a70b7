"""The documentation holds together: links resolve, `make` targets exist, the README stays a front door.

Checked files: README.md, docs/**/*.md and experiments/README.md. Stdlib only, no model loading.

- Every relative link (`[text](path)`, `[text](path#anchor)`, `![alt](path)`, reference definitions
  `[id]: path`) must name an existing file or folder, resolved from the file that holds it; an anchor
  must match a heading of the target Markdown file (GitHub's slugs). `#anchor` links are checked
  against the file's own headings. http(s), mailto and other schemes are skipped. Links inside
  code spans and code blocks are not links and are ignored.
- Every `make <target>` written in a code span or a code block must be a target of the Makefile.
  `make bench-*` needs at least one matching target. Prose is not scanned: English has phrases like
  "make no difference".
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
README_MAX_LINES = 250
FIRST_SCREEN_LINES = 40

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n\s*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>\n]*>|[^\s()]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
)
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_MAKE = re.compile(r"\bmake[ \t]+([a-z][a-z0-9-]*\*?)")
_MAKE_RULE = re.compile(r"^([A-Za-z0-9_.][A-Za-z0-9_.-]*(?:[ \t]+[A-Za-z0-9_.][A-Za-z0-9_.-]*)*)[ \t]*:(?!=)")


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md, every Markdown file under docs/, and experiments/README.md (those that exist)."""
    files = [root / "README.md", *sorted((root / "docs").rglob("*.md")), root / "experiments" / "README.md"]
    return [f for f in files if f.is_file()]


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _blank_fences(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Return (text with fenced code blocks blanked, same length and newlines; [(offset, line), ...])."""
    chars = list(text)
    code: list[tuple[int, str]] = []
    offset = 0
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
            fence = None
        elif fence is not None:
            code.append((offset, line.rstrip("\n")))
        if fence is not None or m:
            for i in range(offset, offset + len(line.rstrip("\n"))):
                chars[i] = " "
        offset += len(line)
    return "".join(chars), code


def split_code(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Return (text with all code blanked, same length and newlines; [(offset, code), ...]).

    Code is fenced blocks (``` or ~~~), one segment per line, and inline code spans.
    """
    prose, code = _blank_fences(text)
    chars = list(prose)
    for m in _INLINE_CODE.finditer(prose):
        code.append((m.start(2), m.group(2).replace("\n", " ")))
        for i in range(m.start(), m.end()):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars), sorted(code)


def find_links(md_path: Path) -> list[tuple[int, str]]:
    """Every link target of a Markdown file as (line, target), outside code."""
    text = md_path.read_text(encoding="utf-8")
    prose, _ = split_code(text)
    found = [(m.start(), m.group(1)) for m in _LINK.finditer(prose)]
    found += [(m.start(), m.group(1)) for m in _REF_DEF.finditer(prose)]
    return [(_line_of(text, off), target.strip("<>")) for off, target in sorted(found)]


def github_slug(heading: str) -> str:
    """GitHub's heading anchor: rendered text, lowercase, punctuation but - and _ dropped, spaces -> -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def heading_slugs(md_path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside code); repeats get -1, -2, ... as on GitHub."""
    text, _ = _blank_fences(md_path.read_text(encoding="utf-8"))
    slugs: set[str] = set()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        m = _HEADING.match(line)
        if not m:
            continue
        slug = github_slug(m.group(2))
        n = counts.get(slug, 0)
        counts[slug] = n + 1
        slugs.add(slug if n == 0 else f"{slug}-{n}")
    return slugs


def broken_links(md_files: list[Path]) -> list[str]:
    """'file:line: target (why)' for every relative link that does not resolve."""
    problems: list[str] = []
    for md in md_files:
        for line, target in find_links(md):
            if not target or _SCHEME.match(target):
                continue  # http(s)://, mailto:, ...
            path_part, _, anchor = target.partition("#")
            dest = (md.parent / unquote(path_part)).resolve() if path_part else md.resolve()
            where = f"{_rel(md)}:{line}: {target}"
            if not dest.exists():
                problems.append(f"{where} (no such file or folder: {_rel(dest)})")
            elif anchor and dest.is_file() and dest.suffix.lower() == ".md":
                if unquote(anchor).lower() not in heading_slugs(dest):
                    problems.append(f"{where} (no heading with anchor #{anchor} in {_rel(dest)})")
    return problems


def makefile_targets(makefile: Path = MAKEFILE) -> set[str]:
    """Rule names (lines `name:` / `a b:`) and every name listed in .PHONY."""
    targets: set[str] = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        m = _MAKE_RULE.match(line)
        if not m:
            continue
        names = m.group(1).split()
        if names == [".PHONY"]:
            targets.update(line.split(":", 1)[1].split("#", 1)[0].split())
        else:
            targets.update(n for n in names if not n.startswith("."))
    return targets


def make_mentions(md_path: Path) -> list[tuple[int, str]]:
    """(line, target) for every `make <target>` in a code span or code block."""
    text = md_path.read_text(encoding="utf-8")
    _, code = split_code(text)
    return [(_line_of(text, off + m.start()), m.group(1)) for off, seg in code for m in _MAKE.finditer(seg)]


def unknown_make_targets(md_files: list[Path], makefile: Path = MAKEFILE) -> list[str]:
    """'file:line: make target' for every mentioned target the Makefile does not define."""
    targets = makefile_targets(makefile)
    return [
        f"{_rel(md)}:{line}: make {name}"
        for md in md_files
        for line, name in make_mentions(md)
        if not fnmatch.filter(targets, name)  # `make bench-*`: some target must match
    ]


# --- the repository's documentation ---------------------------------------------------------------


def test_docs_exist():
    files = doc_files()
    assert README in files
    assert any(f.parent == ROOT / "docs" for f in files), "docs/ has no Markdown page"


def test_every_relative_link_resolves():
    problems = broken_links(doc_files())
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_make_target_exists():
    problems = unknown_make_targets(doc_files())
    assert not problems, f"targets missing from {_rel(MAKEFILE)}:\n" + "\n".join(problems)


def test_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    first_screen = "\n".join(lines[:FIRST_SCREEN_LINES])
    for command in ("make train", "make test"):
        assert re.search(rf"{command}(?![\w-])", first_screen), (
            f"`{command}` is not in README.md's first {FIRST_SCREEN_LINES} lines"
        )


def test_every_docs_page_is_linked_from_the_readme():
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for _, target in find_links(README)
        if not _SCHEME.match(target)
    }
    missing = [_rel(p) for p in sorted((ROOT / "docs").rglob("*.md")) if p.resolve() not in linked]
    assert not missing, "docs pages the README does not link: " + ", ".join(missing)


# --- the checks themselves can fail -----------------------------------------------------------------


def test_link_checker_reports_broken_links_only(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "img.png").write_bytes(b"")
    (tmp_path / "docs" / "b.md").write_text("# The Title (`x.y`)\n\n```\n# not a heading\n```\n")
    page = tmp_path / "docs" / "a.md"
    page.write_text(
        "# A\n"
        "[good](b.md) and ![image](../img.png) and [web](https://example.com/x) [mail](mailto:a@b.c)\n"
        "[bad](missing.md)\n"
        "[good anchor](b.md#the-title-xy) [own anchor](#a)\n"
        "[bad anchor](b.md#not-a-heading) [bad own](#nope)\n"
        "`[in code](also-missing.md)`\n"
        "```\n[in a block](missing-too.md)\n```\n"
        "[split\nlink text](gone/)\n"
    )
    problems = broken_links([page])
    reported = [p.split(": ", 1)[1].split(" (", 1)[0] for p in problems]
    assert reported == ["missing.md", "b.md#not-a-heading", "#nope", "gone/"], problems
    assert problems[0].startswith(f"{page}:3: missing.md")
    assert problems[3].startswith(f"{page}:10: gone/")


def test_make_checker_reports_unknown_targets_only(tmp_path):
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        ".PHONY: train phony-only\nVAR := 1\nOTHER ?= 2\ntrain: deps\n\techo\nbench-a bench-b: x\n"
    )
    assert makefile_targets(makefile) == {"train", "phony-only", "bench-a", "bench-b"}
    page = tmp_path / "a.md"
    page.write_text(
        "Run `make train` or `make bench-b`; this does not make no-such-thing in prose.\n"
        "```bash\nmake phony-only\nmake no-such-target   # made up\n```\n"
        "`make\nbench-z`, every `make bench-*`, no `make nope-*`\n"
    )
    problems = unknown_make_targets([page], makefile)
    assert problems == [
        f"{page}:4: make no-such-target",
        f"{page}:6: make bench-z",
        f"{page}:7: make nope-*",
    ], problems


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Quick start", "quick-start"),
        ("W&B", "wb"),
        ("Memory plan (`python -m src.model_report`)", "memory-plan-python--m-srcmodel_report"),
        ("Wan2.2-TI2V-5B (`model=tiny_wan`)", "wan22-ti2v-5b-modeltiny_wan"),
        ("All benchmarks (`make bench-*`)", "all-benchmarks-make-bench-"),
    ],
)
def test_github_slug(heading, slug):
    assert github_slug(heading) == slug
