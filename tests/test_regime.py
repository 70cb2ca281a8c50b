"""The regime study report (benchmark/regime.py, bench_regime.py): paired deltas per level, table and chart."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from torchreid_dense.benchmark.regime import format_regime, regime_rows, write_regime

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DELTAS = (("DSAG guidance", "dsa_reid", "mf_alone"), ("texture supervision", "san", "san_enc"))


def _result(root, run, seed, mAP, rank1):
    job = osp.join(root, run, f"seed{seed}")
    os.makedirs(job, exist_ok=True)
    with open(osp.join(job, "result.json"), "w") as f:
        json.dump({"run": run, "seed": seed, "label": run, "target": "synthreid",
                   "metrics": {"synthreid": {"mAP": mAP, "rank1": rank1}}}, f)


@pytest.fixture
def outputs(tmp_path):
    low, high, extra = str(tmp_path / "m0.5"), str(tmp_path / "m2"), str(tmp_path / "24ep")
    for seed, (d, m) in enumerate([(0.40, 0.35), (0.42, 0.36)]):  # two seeds at the low level
        _result(low, "dsa_reid", seed, d, d + 0.05)
        _result(low, "mf_alone", seed, m, m + 0.01)
    _result(low, "san", 0, 0.30, 0.33)
    _result(low, "san_enc", 0, 0.31, 0.35)
    _result(low, "san_enc", 1, 0.50, 0.50)   # unpaired: no san seed 1
    _result(high, "dsa_reid", 0, 0.20, 0.25)
    _result(high, "mf_alone", 0, 0.12, 0.15)
    _result(extra, "dsa_reid", 0, 0.50, 0.55)
    _result(extra, "mf_alone", 0, 0.45, 0.50)
    return low, high, extra


def test_regime_rows_pair_seed_by_seed(outputs):
    low, high, extra = outputs
    rows = regime_rows([(0.5, low), (2.0, high)], [("24 epochs", extra)], DELTAS)
    assert [(r["label"], r["x"]) for r in rows] == [("0.5", 0.5), ("2", 2.0), ("24 epochs", None)]
    assert regime_rows([(2.0, high), (0.5, low)], [("24 epochs", extra)], DELTAS) == rows  # levels sorted by value
    dsag = rows[0]["deltas"][0]
    assert dsag["seeds"] == [0, 1]
    assert dsag["mAP"]["mean"] == pytest.approx(5.5) and dsag["mAP"]["std"] == pytest.approx(0.7071068, abs=1e-6)
    assert dsag["rank1"]["mean"] == pytest.approx(9.5)   # (0.45-0.36, 0.47-0.37) -> 9 and 10
    tex = rows[0]["deltas"][1]
    assert tex["seeds"] == [0] and tex["mAP"]["mean"] == pytest.approx(-1.0)
    assert rows[0]["map"]["san_enc"]["n"] == 2           # the row's own mean keeps the unpaired seed
    assert rows[1]["deltas"][0]["mAP"]["mean"] == pytest.approx(8.0) and rows[1]["deltas"][1]["mAP"] is None
    only0 = regime_rows([(0.5, low)], [], DELTAS, seeds=[0])
    assert only0[0]["deltas"][0]["seeds"] == [0] and only0[0]["deltas"][0]["mAP"]["mean"] == pytest.approx(5.0)


def test_format_and_write_regime(outputs, tmp_path):
    low, high, extra = outputs
    rows = regime_rows([(0.5, low), (2.0, high)], [("24 epochs", extra)], DELTAS)
    table = format_regime(rows, DELTAS, knob="synth.misalignment").splitlines()
    assert table[0].startswith("| synth.misalignment | DSAG guidance: mAP (pp) |")
    assert table[2].split(" | ")[1:6] == ["+5.5 ± 0.7", "+9.5 ± 0.7", "41.0 ± 1.4", "35.5 ± 0.7", "0, 1"]
    assert table[3].split(" | ")[1] == "+8.0" and table[3].split(" | ")[6] == "-"
    with_cpu = format_regime(rows, DELTAS, knob="synth.misalignment", extra=("CPU", ["A", "B", "-"])).splitlines()
    assert with_cpu[0].endswith("| texture supervision: seeds | CPU |") and with_cpu[1].endswith("---:|---|")
    assert [line.split(" | ")[-1] for line in with_cpu[2:]] == ["A |", "B |", "- |"]
    assert [line.rsplit(" | ", 1)[0] for line in with_cpu[2:]] == [line.rsplit(" |", 1)[0] for line in table[2:]]
    with pytest.raises(ValueError, match="2 cells for 3 rows"):
        format_regime(rows, DELTAS, extra=("CPU", ["A", "B"]))
    out = write_regime(str(tmp_path / "report"), [(0.5, low), (2.0, high)], [("24 epochs", extra)], DELTAS,
                       knob="synth.misalignment", goal=3.0)
    with open(out["paths"]["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(out["paths"]["json"]) as f:
        saved = json.load(f)
    assert saved["goal"] == 3.0 and [r["label"] for r in saved["rows"]] == ["0.5", "2", "24 epochs"]


def test_bench_regime_cli(outputs, tmp_path):
    low, high, _ = outputs
    cmd = [sys.executable, osp.join(REPO, "benchmarks", "bench_regime.py"), "--output", str(tmp_path / "r"),
           "--level", f"0.5={low}", "--level", f"2={high}"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| 2 | +8.0 |" in done.stdout and osp.exists(tmp_path / "r" / "regime.png")
    bad = subprocess.run(cmd[:4] + ["--level", f"two={low}"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "the value must be a number" in bad.stderr
    missing = subprocess.run(cmd[:4] + ["--level", f"1={tmp_path / 'nowhere'}"], capture_output=True, text=True,
                             cwd=REPO)
    assert missing.returncode == 2 and "no such suite output directory" in missing.stderr
    # --deltas: only the named ones of the suite, in the suite's order; a name it lacks is refused with the known ones
    only = subprocess.run(cmd + ["--deltas", "texture supervision"], capture_output=True, text=True, cwd=REPO)
    assert only.returncode == 0, only.stderr
    assert only.stdout.splitlines()[0].startswith("| synth.misalignment | texture supervision: mAP (pp) |")
    assert "DSAG guidance" not in only.stdout.split("=>")[0]
    typo = subprocess.run(cmd + ["--deltas", "DSAG"], capture_output=True, text=True, cwd=REPO)
    assert typo.returncode == 2 and "'DSAG': not a delta of" in typo.stderr and "DSAG guidance;" in typo.stderr
