"""Alignment evidence (issue 11): IUV-fused textures, the SynthReID misalignment knob and its wiring, paired deltas
and the alignment suite."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

import torchreid_dense  # noqa: F401  (registers synthreid*)
from torchreid_dense.benchmark.report import format_deltas, paired_deltas, write_report
from torchreid_dense.benchmark.runner import _resolver, plan_jobs
from torchreid_dense.benchmark.suite import SuiteError, load_suite
from torchreid_dense.data.datasets.synthreid import SynthReIDTiny, is_synth_dir
from torchreid_dense.data.synth.body import sample_pose
from torchreid_dense.data.synth.cameras import CAMERAS, sample_view
from torchreid_dense.data.synth.generate import (SynthConfig, dataset_dir, ensure_dataset, generate_dataset,
                                                 make_config, read_manifest)
from torchreid_dense.data.texture_fusion import fuse_dataset, fuse_views, identity_images
from torchreid_dense.data.texture_generation import main as generate_main
from torchreid_dense.dense.atlas import atlas_shape
from torchreid_dense.dense.parts import FLIP_CHART
from torchreid_dense.dense.sidecar import sidecar_path
from torchreid_dense.engine.launch import load_config, resolve_synth_root

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MICRO = SynthConfig(num_train_ids=3, num_test_ids=3, train_images=(3, 3), train_cameras=(2, 2), test_cameras=(2, 2),
                    test_images_per_camera=(2, 2), distractors=2, pit_textures=2, pit_views=2)


def _texel(chart, y, x, tile):
    """Atlas pixel of tile-local (row y, column x) of ``chart`` (1-based): the layout of REFERENCE 1.3."""
    k = chart - 1
    return tile * (k % 6) + y, tile * (k // 6) + x


# ------------------------------------------------------------------------------------------- fuse_views


def test_fuse_views_mean_mirror_chart_and_body_rules():
    tile = 2
    h, w = atlas_shape(tile)
    atlases, valid = torch.zeros(2, 1, h, w), torch.zeros(2, 1, h, w, dtype=torch.bool)

    def see(view, chart, y, x, value):
        yy, xx = _texel(chart, y, x, tile)
        atlases[view, 0, yy, xx], valid[view, 0, yy, xx] = value, True

    see(0, 1, 0, 0, 10.0)   # rule 1: two views of one texel -> their mean
    see(1, 1, 0, 0, 30.0)
    see(0, 1, 1, 1, 50.0)   # torso front: 2 of 4 texels seen; the rest take the chart mean (rule 3)
    see(0, 15, 0, 1, 7.0)   # upper arm left front: seen once; its mirror (16) only through it (rule 2)
    see(1, 16, 1, 0, 9.0)   # and the mirror's own texel goes back to chart 15 at the same place
    fused, seen = fuse_views(atlases, valid)
    assert fused.shape == (1, h, w) and seen.shape == (1, h, w) and int(seen.sum()) == 4
    at = lambda chart, y, x: fused[0][_texel(chart, y, x, tile)].item()  # noqa: E731
    assert at(1, 0, 0) == 20.0 and at(1, 1, 1) == 50.0
    assert at(1, 0, 1) == at(1, 1, 0) == 35.0  # mean of chart 1's seen texels (20 and 50)
    assert FLIP_CHART[15] == 16 and FLIP_CHART[16] == 15
    assert at(16, 0, 1) == 7.0 and at(15, 1, 0) == 9.0  # mirrored at the same (U, V)
    assert at(15, 0, 1) == 7.0 and at(16, 1, 0) == 9.0
    assert at(15, 0, 0) == at(16, 1, 1) == 8.0  # chart mean after mirroring: (7 + 9) / 2 in both
    body = (20.0 + 50.0 + 7.0 + 9.0) / 4  # charts nobody saw: the mean over every seen texel (rule 4)
    assert at(2, 0, 0) == at(24, 1, 1) == body
    empty, nothing = fuse_views(torch.zeros(1, 3, h, w), torch.zeros(1, 1, h, w, dtype=torch.bool))
    assert not nothing.any() and torch.equal(empty, torch.zeros(3, h, w))


# ------------------------------------------------------------------------------------------- fuse_dataset


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    root = tmp_path_factory.mktemp("align_micro")
    out = generate_dataset(root, "tiny", 0, config=MICRO, progress=False, force=True)
    return str(root), out


def _train(ds_dir):
    paths = sorted(p for p in os.listdir(osp.join(ds_dir, "bounding_box_train")) if p.endswith(".jpg"))
    return [(osp.join(ds_dir, "bounding_box_train", p), int(p[:4]), 0) for p in paths]


def test_fuse_dataset_one_atlas_per_identity_resumable(micro, tmp_path):
    _, ds_dir = micro
    train = _train(ds_dir)
    groups = identity_images(train)
    assert sorted(groups) == [1, 2, 3] and all(len(v) == 3 for v in groups.values())
    out = str(tmp_path / "fused")
    res = fuse_dataset(train, ds_dir, (48, 32), iuv_kind="densepose_gt", output_dir=out, progress=False)
    assert (res["identities"], res["images"], res["written"], res["skipped"], res["no_iuv"]) == (3, 9, 9, 0, [])
    assert 0 < res["seen_fraction"] < 1
    for pid, paths in groups.items():
        pictures = [np.asarray(Image.open(osp.join(out, osp.relpath(sidecar_path(ds_dir, p, "textures"), ds_dir))))
                    for p in paths]
        assert pictures[0].shape == (48, 32, 3) and all(np.array_equal(pictures[0], q) for q in pictures)
    # the visible texels carry the image colours: an identity's fused atlas is closer to its own ground-truth
    # atlas than to another identity's
    def atlas(pid, kind_dir):
        p = groups[pid][0]
        rel = osp.relpath(sidecar_path(ds_dir, p, "textures"), ds_dir)
        return np.asarray(Image.open(osp.join(kind_dir, rel)).convert("RGB").resize((32, 48)), dtype=np.float32)
    err = [[np.abs(atlas(a, out) - atlas(b, ds_dir)).mean() for b in (1, 2, 3)] for a in (1, 2, 3)]
    assert all(err[i][i] == min(err[i]) for i in range(3)), err
    stamps = {f: os.stat(osp.join(d, f)).st_mtime_ns for d, _, fs in os.walk(out) for f in fs}
    again = fuse_dataset(train, ds_dir, (48, 32), iuv_kind="densepose_gt", output_dir=out, progress=False)
    assert (again["written"], again["skipped"], again["seen_fraction"]) == (0, 9, None)  # resumable: nothing redone
    assert stamps == {f: os.stat(osp.join(d, f)).st_mtime_ns for d, _, fs in os.walk(out) for f in fs}
    with pytest.raises(ValueError, match="6N x 4N"):
        fuse_dataset(train, ds_dir, (50, 32), output_dir=out, progress=False)


def test_fuse_lists_identities_without_iuv(micro, tmp_path):
    _, ds_dir = micro
    train = _train(ds_dir)
    sidecars = str(tmp_path / "iuv")  # a sidecar root holding IUV maps for identities 2 and 3 only
    for path, pid, _ in train:
        if pid != 1:
            src = sidecar_path(ds_dir, path, "densepose_gt")
            dst = osp.join(sidecars, osp.relpath(src, ds_dir))
            os.makedirs(osp.dirname(dst), exist_ok=True)
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
    res = fuse_dataset(train, ds_dir, (48, 32), iuv_kind="densepose_gt", output_dir=str(tmp_path / "out"),
                       sidecar_base=sidecars, progress=False)
    assert res["no_iuv"] == [1] and res["written"] == 6


def test_generate_textures_method_fuse_command(micro, tmp_path, capsys):
    root, ds_dir = micro
    config = tmp_path / "c.yaml"
    config.write_text("use_gpu: False\nmodel:\n  name: san_r18\n  pretrained: False\ndata:\n  workers: 0\n"
                      "san:\n  texture_size: [48, 32]\ndense:\n  iuv_kind: densepose_gt\n")
    out = str(tmp_path / "fused")
    res = generate_main(["--method", "fuse", "--config-file", str(config), "--dataset", "synthreid_tiny",
                         "--root", ds_dir, "--output-dir", out, "--no-progress"])
    assert res["synthreid_tiny"]["written"] == 9
    assert "9 textures written" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--weights"):
        generate_main(["--config-file", str(config), "--dataset", "synthreid_tiny", "--root", ds_dir])


# ------------------------------------------------------------------------------------------- misalignment


def test_misalignment_scales_viewpoint_box_and_pose_spread():
    def views(m, jitter=1.0):
        rng = np.random.default_rng(0)
        return [sample_view(rng, CAMERAS[0], 128, 64, jitter=jitter, yaw_spread=m) for _ in range(200)]

    aligned = views(0.0, jitter=0.0)
    assert all(v.yaw == 0.0 and v.cx == 32.0 for v in aligned)  # camera 1's preferred view, a perfect box
    spread = {m: np.std([v.yaw for v in views(m)]) for m in (0.5, 1.0, 2.0)}
    assert spread[0.5] < spread[1.0] < spread[2.0]
    assert spread[2.0] == pytest.approx(2 * spread[1.0], rel=1e-9)  # the same draws, scaled
    rng = np.random.default_rng(0)
    any_view = [sample_view(rng, CAMERAS[3], 128, 64, yaw_spread=0.25).yaw for _ in range(200)]
    assert max(abs(y) for y in any_view) <= np.deg2rad(45.0)  # the any-view camera's range shrinks too
    still = sample_pose(np.random.default_rng(1), spread=0.0)
    assert still.leg_swing == pytest.approx(0.08) and still.lean == 0.0
    a, b = sample_pose(np.random.default_rng(1)), sample_pose(np.random.default_rng(1), spread=1.0)
    assert a == b


def test_misalignment_is_recorded_named_and_old_manifests_still_match(tmp_path):
    base = make_config("tiny")
    assert base.misalignment == 1.0 and make_config("tiny", misalignment=2.0).misalignment == 2.0
    assert dataset_dir(tmp_path, "tiny", 3, base).endswith("tiny_s3")
    assert dataset_dir(tmp_path, "tiny", 3, make_config("tiny", misalignment=2.0)).endswith("tiny_s3_m2")
    cfg = SynthConfig(**{**MICRO.__dict__, "misalignment": 0.5})
    out = generate_dataset(tmp_path, "micro", 1, config=cfg, progress=False)
    assert read_manifest(out)["params"]["misalignment"] == 0.5
    plain = generate_dataset(tmp_path, "micro", 2, config=MICRO, progress=False)
    path = osp.join(plain, "manifest.json")
    manifest = json.load(open(path))
    del manifest["params"]["misalignment"]  # a set written before the knob existed
    json.dump(manifest, open(path, "w"))
    assert ensure_dataset(tmp_path, "micro", 2, config=MICRO) == plain


def test_synth_seed_and_misalignment_reach_the_data_set(tmp_path):
    cfg = load_config("", ["data.sources", "['synthreid_tiny']", "data.targets", "['synthreid_tiny']",
                           "data.root", str(tmp_path), "synth.preset", "tiny", "synth.seed", "5",
                           "synth.misalignment", "0.5"])
    resolve_synth_root(cfg)
    assert cfg.data.root == osp.join(str(tmp_path), "synthreid", "tiny_s5_m0.5") and is_synth_dir(cfg.data.root)
    ds = SynthReIDTiny(root=cfg.data.root, verbose=False)
    assert ds.dataset_dir == cfg.data.root and ds.synth_seed == 5
    assert read_manifest(ds.dataset_dir)["params"]["misalignment"] == 0.5
    resolve_synth_root(cfg)  # already a SynthReID directory: unchanged
    assert cfg.data.root == ds.dataset_dir
    with pytest.raises(ValueError, match="'tiny' directory but data set SynthReID is the 'small' preset"):
        from torchreid_dense.data.datasets.synthreid import SynthReID
        SynthReID(root=cfg.data.root, verbose=False)
    mixed = load_config("", ["data.sources", "['synthreid_tiny']", "data.targets", "['market1501']",
                             "data.root", str(tmp_path), "synth.seed", "5"])
    with pytest.raises(Exception, match="run them separately"):
        resolve_synth_root(mixed)


# ------------------------------------------------------------------------------------------- deltas, suite


def _result(run, seed, mAP, rank1):
    return {"run": run, "seed": seed, "target": "t", "report": True, "label": run,
            "metrics": {"t": {"mAP": mAP, "rank1": rank1}}, "train_time_s": 60.0}


def test_paired_deltas_pair_seeds_and_report_their_spread(tmp_path):
    results = [_result("a", s, m, r) for s, m, r in ((0, 0.30, 0.40), (1, 0.34, 0.42), (2, 0.32, 0.50))]
    results += [_result("b", s, m, r) for s, m, r in ((0, 0.25, 0.40), (1, 0.30, 0.40), (3, 0.10, 0.10))]
    (row,) = paired_deltas(results, [("gain", "a", "b")])
    assert row["seeds"] == [0, 1]  # seed 2 of a and seed 3 of b have no partner
    assert row["mAP"]["mean"] == pytest.approx(4.5) and row["mAP"]["std"] == pytest.approx(np.std([5, 4], ddof=1))
    assert row["rank1"]["mean"] == pytest.approx(1.0)
    table = format_deltas([row])
    assert "| gain | a - b | +4.5 ± 0.7 | +1.0 ± 1.4 | 0, 1 |" in table
    report = write_report(str(tmp_path), results, deltas=[("gain", "a", "b")])
    assert "Paired deltas" in open(report["paths"]["md"]).read()
    assert json.load(open(report["paths"]["json"]))["deltas"][0]["seeds"] == [0, 1]


def test_suite_deltas_and_suite_dir_placeholder(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  name: resnet18\n")
    good = ("runs:\n  - {name: a, config: %s, opts: {dense.sidecar_root: '{suite.dir}/tex'}}\n"
            "  - {name: b, config: %s}\ndeltas:\n  - {name: gain, plus: a, minus: b}\n") % (cfg, cfg)
    (tmp_path / "s.yaml").write_text(good)
    suite = load_suite(str(tmp_path / "s.yaml"))
    assert suite.deltas == (("gain", "a", "b"),) and suite.select(["a"]).deltas == suite.deltas
    (job,) = [j for j in plan_jobs(suite, str(tmp_path / "out")) if j.run.name == "a"]
    argv = job.argv(resolve=_resolver(job))
    assert argv[argv.index("dense.sidecar_root") + 1] == osp.join(str(tmp_path / "out"), "tex")
    (tmp_path / "bad.yaml").write_text(good.replace("minus: b", "minus: c"))
    with pytest.raises(SuiteError, match="must name runs"):
        load_suite(str(tmp_path / "bad.yaml"))
    (tmp_path / "bad2.yaml").write_text("runs:\n  - {name: suite, config: %s}\n" % cfg)
    with pytest.raises(SuiteError, match="reserved"):
        load_suite(str(tmp_path / "bad2.yaml"))


def test_alignment_suite_rows_seeds_and_budget(monkeypatch):
    monkeypatch.chdir(REPO)
    suite = load_suite("configs/suites/alignment.yaml", profile="evidence")
    assert suite.deltas == (("DSAG guidance", "dsa_reid", "mf_alone"), ("texture supervision", "san", "san_enc"),
                            ("texture supervision, authors' recipe", "san_authors", "san_authors_control"),
                            ("texture supervision, texture step", "san_texture_step", "san_enc"))
    seeds = {r.name: r.seeds for r in suite.runs}
    delta_rows = ("mf_alone", "dsa_reid", "san_enc", "san", "san_authors", "san_authors_control", "san_texture_step")
    assert all(seeds[n] == (0, 1, 2) for n in delta_rows)
    assert seeds["san_tr_spatial"] == (0, 1, 2)  # it decided san.tr_normalize's default
    assert seeds["san_pg_r18"] == (0,) and not suite.run("san_pg_r18").report
    cfgs = {r.name: load_config(r.config, list(r.opts)) for r in suite.runs}
    for name, cfg in cfgs.items():  # one budget for every row
        assert (cfg.data.height, cfg.data.width, cfg.dense.dsap_size) == (64, 32, 16), name
        assert cfg.data.transforms == ["random_flip"], name
        if name != "san_pg_r18":
            assert (cfg.train.max_epoch, cfg.train.warmup_epochs, cfg.train.stepsize) == (12, 2, [6]), name
    assert cfgs["mf_alone"].dsa.streams == "mf" and cfgs["dsa_reid"].dsa.streams == "two"
    assert cfgs["dsa_reid"].dense.iuv_kind == "densepose" and cfgs["dsa_reid_gt"].dense.iuv_kind == "densepose_gt"
    enc, san = cfgs["san_enc"], cfgs["san"]
    assert enc.san.id_head == san.san.id_head == "bnneck"
    assert enc.san.weight_rec == 0 and not enc.san.use_tr and not enc.san.use_pit and not enc.san.init_weights
    assert enc.san.pg_max_epoch == 0  # the SAN steps train no SAN-PG for the control
    assert san.dense.sidecar_root == "{suite.dir}/textures/sanpg" and san.san.init_weights
    assert cfgs["san_fused"].dense.sidecar_root == "{suite.dir}/textures/fused"
    assert cfgs["dsa_reid_part_mean"].dsa.part_id_reduction == "mean" and cfgs["san_tr_sum"].san.tr_reduction == "sum"
    # issue 26: the authors' recipe and its control differ only in the texture terms; the texture-step row only in
    # the second step
    authors, control, step = cfgs["san_authors"], cfgs["san_authors_control"], cfgs["san_texture_step"]
    assert (authors.san.decoder, authors.san.id_head, authors.san.tr_pairing, authors.san.texture_range) == (
        "unet", "fc512", "offsets", "tanh")
    assert authors.san.texture_step and not control.san.texture_step and control.san.weight_rec == 0
    assert not control.san.use_tr and control.san.id_head == "fc512" and control.train.optim == authors.train.optim
    assert step.san.texture_step and (step.san.decoder, step.san.init_weights) == ("residual", san.san.init_weights)



def test_alignment_quick_profile_is_one_budget_for_the_demo_rows(monkeypatch):
    monkeypatch.chdir(REPO)
    suite = load_suite("configs/suites/alignment.yaml", profile="quick").select(
        ["resnet18", "mf_alone", "dsa_reid", "san_enc", "san"])
    assert sorted(r.name for r in suite.runs) == ["dsa_reid", "mf_alone", "resnet18", "san", "san_enc", "san_pg_r18"]
    assert all(r.seeds == (0,) for r in suite.runs)
    for run in suite.runs:
        cfg = load_config(run.config, list(run.opts))
        assert (cfg.data.height, cfg.data.width, cfg.dense.dsap_size) == (64, 32, 16), run.name
        schedule = (cfg.train.max_epoch, cfg.train.warmup_epochs, cfg.train.stepsize)
        assert schedule == ((4, 0, [3]) if run.name == "san_pg_r18" else (3, 1, [2])), run.name


# ------------------------------------------------------------------------------------------- demo pictures


def test_rank_gallery_leaves_out_same_camera_matches_like_torchreid(tmp_path):
    from torchreid_dense.benchmark.ranks import rank_gallery
    from torchreid_dense.dense.visualize import save_ranked_figure

    qf = torch.tensor([[0.0], [10.0]])
    gf = torch.tensor([[0.1], [0.2], [0.3], [9.0], [10.5]])
    g_pids, g_cams = [1, 1, 2, 3, 2], [0, 1, 1, 0, 0]
    index, correct = rank_gallery(qf, gf, [1, 2], [0, 0], g_pids, g_cams, topk=3)
    # query 1 (camera 0): gallery 0 is the same identity seen by the same camera -> left out
    assert index[0].tolist() == [1, 2, 3] and correct[0].tolist() == [True, False, False]
    # query 2 (camera 0): gallery 4 (pid 2, camera 0) left out; gallery 2 (pid 2, camera 1) is the match
    assert index[1].tolist() == [3, 2, 1] and correct[1].tolist() == [False, True, False]
    pic = np.zeros((16, 8, 3), np.uint8)
    pic[:8] = 255  # white top half, black bottom half
    out = tmp_path / "ranks.png"
    save_ranked_figure(str(out), [pic, pic], [("a", [[(pic, True)] * 3] * 2), ("b", [[(pic, False)] * 3] * 2)],
                       topk=3, title="t", cell=(64, 32), border=4, gap=6)
    canvas = np.asarray(Image.open(out).convert("RGB"))
    # 1 query + 2 models x 3 cells of 32 px, gaps of 6 between cells and of 24 before each model's block
    assert canvas.shape[1] == 32 + 2 * (24 + 3 * 32 + 2 * 6) + 2 * 6
    top = canvas.shape[0] - 2 * (64 + 6) - 6  # the rows sit below the title and the headers
    x_a, x_b = 6 + 32 + 24, 6 + 32 + 24 + (3 * 32 + 2 * 6) + 24
    for x, colour in ((6, (128, 128, 128)), (x_a, (44, 160, 44)), (x_b, (214, 39, 40))):
        assert tuple(canvas[top + 1, x + 1]) == colour  # frame: grey query, green match, red non-match
    # the picture is scaled to the cell: 56 rows inside the frame, the top 28 white, the bottom 28 black
    inside = canvas[top + 4:top + 60, x_a + 4:x_a + 28]
    assert (inside[:28] == 255).all() and (inside[28:] == 0).all()


def test_alignment_suite_shares_one_san_pg_and_its_textures(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    suite = load_suite("configs/suites/alignment.yaml", profile="evidence")
    jobs = {job.key: job for job in plan_jobs(suite, str(tmp_path))}
    pg = jobs["san_pg_r18/seed0"]
    for seed in (0, 1, 2):  # every SAN seed starts from the one SAN-PG and reads the textures written once
        job = jobs[f"san/seed{seed}"]
        assert [dep for _, dep in job.deps] == [pg]
        argv = job.argv(resolve=lambda m: {"dir": pg.out_dir, "checkpoint": "pg.pth"}[m.group(2)]
                        if m.group(1) != "suite" else str(tmp_path))
        assert argv[argv.index("dense.sidecar_root") + 1] == osp.join(str(tmp_path), "textures", "sanpg")
        assert argv[argv.index("san.init_weights") + 1] == "pg.pth"
    assert not jobs["san_enc/seed0"].deps


def test_alignment_suite_trains_san_pg_on_its_own_schedule_at_the_24_epoch_point(monkeypatch, tmp_path):
    # the regime's 24-epoch point trains the re-ID rows longer; SAN-PG (single-step, no warm-up) stays as it is
    monkeypatch.chdir(REPO)
    suite = load_suite("configs/suites/alignment.yaml", profile="evidence").select(["san"])
    longer = ["train.max_epoch", "24", "train.warmup_epochs", "4", "train.stepsize", "[12]"]
    jobs = {job.key: job for job in plan_jobs(suite, str(tmp_path))}
    schedules = {}
    for key in ("san_pg_r18/seed0", "san/seed0"):
        run = jobs[key].run
        cfg = load_config(run.config, list(run.opts) + run.command_line_opts(longer))
        schedules[key] = (cfg.train.max_epoch, cfg.train.warmup_epochs, cfg.train.stepsize)
    assert schedules == {"san_pg_r18/seed0": (20, 0, [15]), "san/seed0": (24, 4, [12])}
    # so the 12-epoch output's SAN-PG job is the 24-epoch output's too
    pg = jobs["san_pg_r18/seed0"]
    assert pg.fingerprint(["data.root", "/d", *longer]) == pg.fingerprint(["data.root", "/d"])


def _driver_commands(monkeypatch, tmp_path, **kwargs):
    """The child commands run_alignment would run (none is run), with SAN-PG's checkpoint faked."""
    from torchreid_dense.benchmark import alignment

    calls = []
    monkeypatch.setattr(alignment, "_run", lambda cmd, threads=0: calls.append(cmd + [f"<threads {threads}>"]))
    monkeypatch.setattr(alignment, "last_checkpoint", lambda job: osp.join(job, "model", "model.pth.tar-20"))
    alignment.run_alignment(str(tmp_path / "out"), str(tmp_path / "data"), **kwargs)
    return calls


def test_alignment_driver_runs_every_step_with_the_profiles_threads(monkeypatch, tmp_path):
    """The evidence profile's one torch thread reaches every child (the published rows ran so); --train-threads
    replaces it, and the benchmark children are told."""
    calls = _driver_commands(monkeypatch, tmp_path, only=["san"], seeds=[0])
    assert [c[-1] for c in calls] == ["<threads 1>"] * 4 and not any("--train-threads" in c for c in calls)
    calls = _driver_commands(monkeypatch, tmp_path, only=["san"], seeds=[0], train_threads=2)
    assert [c[-1] for c in calls] == ["<threads 2>"] * 4
    assert [c[c.index("--train-threads") + 1] for c in calls if osp.basename(c[1]) == "benchmark.py"] == ["2"] * 3
    quick = _driver_commands(monkeypatch, tmp_path, only=["san"], profile="quick")
    assert [c[-1] for c in quick] == ["<threads 2>"] * 4  # make demo: 2, as the README's table ran


def _tool(cmd):
    return osp.basename(cmd[1]), cmd[cmd.index("--only") + 1:cmd.index("--opts")] if "--only" in cmd else None


def test_alignment_driver_trains_san_pg_for_a_row_that_reads_its_textures_only(monkeypatch, tmp_path):
    # san_no_pg reads SAN-PG's pseudo textures but does not start from its weights (no depends_on)
    calls = _driver_commands(monkeypatch, tmp_path, only=["san_no_pg"])
    assert [osp.basename(c[1]) for c in calls] == ["benchmark.py", "generate_textures.py", "benchmark.py",
                                                   "benchmark.py"]
    assert _tool(calls[0]) == ("benchmark.py", ["san_pg_r18"])
    gen = calls[1]
    assert gen[gen.index("--method") + 1] == "sanpg"
    assert gen[gen.index("--weights") + 1] == osp.join(str(tmp_path / "out"), "san_pg_r18", "seed0", "model",
                                                       "model.pth.tar-20")
    assert gen[gen.index("--output-dir") + 1] == osp.join(str(tmp_path / "out"), "textures", "sanpg")
    assert sorted(_tool(calls[2])[1][:2]) == ["san_no_pg", "san_pg_r18"]


def test_alignment_driver_control_rows_need_no_san_pg_and_no_textures(monkeypatch, tmp_path):
    calls = _driver_commands(monkeypatch, tmp_path, only=["mf_alone", "san_enc"], seeds=[0],
                             opts=["synth.misalignment", "2.0"])
    assert [_tool(c) for c in calls] == [("benchmark.py", ["mf_alone", "san_enc", "--seeds", "0"])] * 2
    assert calls[0][-3:-1] == ["synth.misalignment", "2.0"]
