"""The documentation's shape (issue 27): a short README, topic pages that say what they are for, no dead link.

Commands are checked by tests/test_doc_commands.py, measured tables by tests/test_render_docs.py.
"""
import glob
import os.path as osp
import re

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = ["README.md"] + sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, "docs", "*.md")))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def github_anchor(heading):
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as f:
        text = FENCE.sub("", f.read())
    return {github_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def dead_links(page, repo=REPO):
    """``(link, problem)`` for every relative link or image of ``page`` whose file or heading does not exist."""
    path = osp.join(repo, page)
    with open(path, encoding="utf-8") as f:
        text = FENCE.sub("", f.read())
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        file_part, _, anchor = target.partition("#")
        dest = osp.normpath(osp.join(osp.dirname(path), file_part)) if file_part else path
        if not osp.exists(dest):
            bad.append((target, "no such file"))
        elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
            bad.append((target, f"no heading with anchor #{anchor} in {osp.relpath(dest, repo)}"))
    return bad


def test_github_anchor_rules():
    assert github_anchor("The paper and the SAN authors' released code") == "the-paper-and-the-san-authors-released-code"
    assert github_anchor("Scaling: multi-GPU, mixed precision") == "scaling-multi-gpu-mixed-precision"
    assert github_anchor("`make test` and `make demo`") == "make-test-and-make-demo"


def test_dead_link_checker_finds_missing_files_and_headings(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n\n## Some part\n\n[ok](#some-part) [ok](b.md) [web](https://x.org/y)\n"
                                   "[gone](c.md) [no anchor](b.md#nowhere) ![pic](p.png)\n"
                                   "```\n[in a fence](z.md)\n```\n")
    (tmp_path / "b.md").write_text("# B\n")
    assert dead_links("a.md", str(tmp_path)) == [("c.md", "no such file"),
                                  ("b.md#nowhere", "no heading with anchor #nowhere in b.md"),
                                  ("p.png", "no such file")]


def test_readme_is_at_most_150_lines():
    with open(osp.join(REPO, "README.md"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines: move detail to a page under docs/"


@pytest.mark.parametrize("page", [p for p in PAGES if p != "README.md"])
def test_each_topic_page_starts_with_what_it_is_for(page):
    with open(osp.join(REPO, page), encoding="utf-8") as f:
        head = f.read().split("\n\n")[:2]
    assert head[0].startswith("# ") and head[1].startswith("What this page is for:"), \
        f"{page}: start with its title, then a paragraph 'What this page is for: ...'"


@pytest.mark.parametrize("page", PAGES)
def test_no_dead_link(page):
    assert not dead_links(page), f"{page}: {dead_links(page)}"


def test_readme_links_every_topic_page():
    with open(osp.join(REPO, "README.md"), encoding="utf-8") as f:
        linked = {osp.normpath(t.partition("#")[0]) for t in LINK.findall(f.read())}
    missing = [p for p in PAGES[1:] if p not in linked and p != osp.join("docs", "san_authors_code.md")]
    assert not missing, f"README.md does not link {missing}"
