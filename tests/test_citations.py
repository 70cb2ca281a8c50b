"""Section numbers quoted from the papers exist in them (DSA-reID, Zhang et al., CVPR 2019; SAN, Jin et al., AAAI 2020)."""
import glob
import os.path as osp
import re

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the numbered sections of the two papers (read off their headings)
SECTIONS = {
    "DSA-reID": {"1", "2", "3", "3.1", "3.2", "3.2.1", "3.2.2", "3.2.3", "3.2.4", "4", "4.1", "4.2", "4.3", "4.4", "5"},
    "SAN": {"1", "2", "3", "3.1", "3.2", "4", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "5"},
}
QUOTE = re.compile(r"\bSec(?:tion|s)?\.? ?(\d+(?:\.\d+)*)")


def test_every_quoted_section_number_exists_in_a_paper():
    known = set().union(*SECTIONS.values())
    files = [p for pattern in ("torchreid_dense/**/*.py", "tools/*.py", "benchmarks/*.py", "configs/**/*.yaml",
                               "docs/*.md", "README.md") for p in glob.glob(osp.join(REPO, pattern), recursive=True)]
    assert len(files) > 50
    bad = [f"{osp.relpath(p, REPO)}: Sec. {m}" for p in files for m in QUOTE.findall(open(p, encoding="utf-8").read())
           if m not in known]
    assert not bad, bad
