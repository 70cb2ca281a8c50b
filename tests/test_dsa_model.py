"""DSA-reID model, DSALoss and DSAEngine (DSA-reID CVPR 2019, Sec. 3.2, Table 1)."""
import math

import numpy as np
import pytest
import torch
from yacs.config import CfgNode

import torchreid_dense  # noqa: F401  (registers the plugin into torchreid)
from torchreid_dense import compat
from torchreid_dense.dense.parts import MERGE_LEVEL1, MERGE_LEVEL2
from torchreid_dense.engine.dsa import DSAEngine
from torchreid_dense.losses.dsa_loss import DSALoss
from torchreid_dense.models.dsa_reid import DSAGStream, build_dsa_reid, dsa_reid, dsa_reid_r18
from torchreid_dense.models.layers import GroupedLinear, TwoFCClassifier
from torchreid_dense.registry import ENGINES, LOSSES, MODELS


def _param_ids(module):
    return {id(p) for p in module.parameters()}


@pytest.fixture(scope="module")
def r50():
    """The paper's ResNet-50 DSA-reID, built by name through torchreid."""
    torch.manual_seed(0)
    return compat.models.build_model("dsa_reid", num_classes=10, pretrained=False, use_gpu=False).eval()


@pytest.fixture(scope="module")
def r18():
    torch.manual_seed(0)
    return build_dsa_reid(6, backbone="resnet18", pretrained=False)


def _batch(num_ids=3, per_id=4, h=64, w=32, size=16, seed=0, camid=0):
    """Hand-made small batch (DSAP-images of S=16: the DSAG-Stream is size-agnostic, S=32 costs 4x)."""
    g = torch.Generator().manual_seed(seed)
    n = num_ids * per_id
    pids = torch.arange(num_ids).repeat_interleave(per_id)
    # identity-dependent colour so the batch is learnable
    imgs = torch.randn(n, 3, h, w, generator=g) + pids.view(-1, 1, 1, 1).float()
    dsap = torch.randn(n, 24, 3, size, size, generator=g) + pids.view(-1, 1, 1, 1, 1).float()
    return {"img": imgs, "pid": pids, "camid": torch.full((n,), camid), "dsap": dsap}


# ---------------------------------------------------------------- registration


def test_registered_in_torchreid_and_plugin_registries(r50):
    assert compat.model_factory()["dsa_reid"] is dsa_reid
    assert compat.model_factory()["dsa_reid_r18"] is dsa_reid_r18
    assert MODELS.meta("dsa_reid")["engine"] == "dsa"
    assert MODELS.meta("dsa_reid_r18")["engine"] == "dsa"
    assert ENGINES.get("dsa") is DSAEngine
    assert LOSSES.get("dsa") is DSALoss
    assert type(r50).__name__ == "DSAReID"


# ---------------------------------------------------------------- Table 1 shapes (ResNet-50 widths)


def test_dsag_stage_shapes_match_table1(r50):
    with torch.no_grad():
        st = r50.dsag_stream.stages(torch.rand(1, 24, 3, 32, 32))
    # (branches x per-branch width, spatial size) from Table 1
    expected = {
        "conv1": (24 * 32, 32),
        "conv2": (24 * 64, 32),
        "conv3": (24 * 64, 16),
        "merge1": (13 * 64, 16),
        "conv4": (13 * 128, 8),
        "merge2": (8 * 128, 8),  # D = [D1..D8]
    }
    for name, (c, s) in expected.items():
        assert tuple(st[name].shape) == (1, c, s, s), name
    assert tuple(st["g"].shape) == (1, 2048)  # dG
    assert tuple(st["l"].shape) == (1, 8, 256)  # dL,i
    # branches are grouped convolutions, not loops over modules
    assert r50.dsag_stream.conv1[0].groups == 24
    assert r50.dsag_stream.conv4[0].conv1.groups == 13
    assert r50.dsag_stream.conv5_l[0].conv1.groups == 8
    assert r50.dsag_stream.conv5_g[0].conv1.groups == 1


def test_mf_stream_shapes_r50(r50):
    x, fmaps = torch.rand(2, 3, 256, 128), []
    hook = r50.mf_stream.backbone.register_forward_hook(lambda m, i, o: fmaps.append(o))
    with torch.no_grad():
        feat = r50(x)
    hook.remove()
    assert tuple(fmaps[0].shape) == (2, 1024, 16, 8)  # F = 8 x 128 channels
    assert tuple(feat.shape) == (2, 4096)  # eval: [fG, fL], no DSAP needed
    assert (r50.mf_stream.global_dim, r50.mf_stream.part_dim) == (2048, 256)
    assert r50.mf_stream.local_branch[0].conv2.groups == 8
    assert r50.mf_stream.global_branch[0].conv2.stride == (1, 1)  # last stride removed


def test_inference_module_has_only_mf_stream_params(r50):
    inf = r50.inference_module()
    assert _param_ids(inf) == _param_ids(r50.mf_stream)
    assert not _param_ids(inf) & _param_ids(r50.dsag_stream)
    n_inf = sum(p.numel() for p in inf.parameters())
    assert n_inf == sum(p.numel() for p in r50.mf_stream.parameters())
    # ResNet-50 conv1..conv5_x (23.5M) + 8 part branches at 1/8 width
    assert 23_000_000 < n_inf < 27_000_000
    x = torch.rand(1, 3, 256, 128)
    with torch.no_grad():
        assert torch.equal(inf(x), r50(x))


# ---------------------------------------------------------------- merges


def test_merge_matches_explicit_sums():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 24 * 3, 4, 4, generator=g)
    m1 = DSAGStream.merge(x, DSAGStream(widths=(2, 2, 3, 5, 4, 2)).merge1)
    per_chart = x.view(2, 24, 3, 4, 4)
    ref1 = torch.stack([sum(per_chart[:, c - 1] for c in grp) for grp in MERGE_LEVEL1], 1)
    assert torch.allclose(m1.view(2, 13, 3, 4, 4), ref1, atol=1e-6)
    m2 = DSAGStream.merge(m1, DSAGStream(widths=(2, 2, 3, 5, 4, 2)).merge2)
    ref2 = torch.stack([sum(per_chart[:, c - 1] for c in grp) for grp in MERGE_LEVEL2], 1)
    assert torch.allclose(m2.view(2, 8, 3, 4, 4), ref2, atol=1e-5)


def _groups_changed(a, b, groups):
    """Indices of the channel groups where a and b differ."""
    a = a.view(a.shape[0], groups, -1)
    b = b.view(b.shape[0], groups, -1)
    return [i for i in range(groups) if not torch.equal(a[:, i], b[:, i])]


def test_signal_in_one_chart_reaches_only_its_merged_branch():
    torch.manual_seed(0)
    stream = DSAGStream(widths=(4, 8, 8, 16, 128, 16)).eval()
    base = torch.randn(2, 24, 3, 32, 32)
    chart = 9  # upper leg right back -> level-1 {9,10} (index 5) -> level-2 upper legs (index 1)
    signal = base.clone()
    signal[:, chart - 1] += torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = stream.stages(base), stream.stages(signal)
    l1 = next(i for i, grp in enumerate(MERGE_LEVEL1) if chart in grp)
    l2 = next(i for i, grp in enumerate(MERGE_LEVEL2) if chart in grp)
    assert (l1, l2) == (5, 1)
    for name in ("conv1", "conv2", "conv3"):
        assert _groups_changed(a[name], b[name], 24) == [chart - 1], name
    for name in ("merge1", "conv4"):
        assert _groups_changed(a[name], b[name], 13) == [l1], name
    assert _groups_changed(a["merge2"], b["merge2"], 8) == [l2]
    assert _groups_changed(a["l"], b["l"], 8) == [l2]  # dL,i of the other parts unchanged
    assert not torch.equal(a["g"], b["g"])  # conv5_g sees all of D


# ---------------------------------------------------------------- r18 forward contract


def test_r18_eval_needs_no_dsap_and_train_returns_every_output(r18):
    x = torch.rand(4, 3, 128, 64)
    r18.eval()
    with torch.no_grad():
        feat = r18(x)
        f = r18.mf_stream(x)
    assert tuple(feat.shape) == (4, 1024)
    assert torch.equal(feat, torch.cat([f["g"], f["l"].flatten(1)], 1))
    r18.train()
    out = r18(x, torch.rand(4, 24, 3, 32, 32))
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "f_g": (4, 512), "f_l": (4, 8, 64), "z_g": (4, 512), "z_l": (4, 512),
        "logits_fg": (4, 6), "logits_fl": (4, 8, 6), "logits_zg": (4, 6), "logits_zl": (4, 6),
    }
    assert r18.dsag_stream.widths == (8, 16, 16, 32, 512, 64)  # Table 1 widths / 4


def test_fusion_is_elementwise_add(r18):
    r18.eval()
    x, s = torch.rand(2, 3, 64, 32), torch.rand(2, 24, 3, 16, 16)
    with torch.no_grad():
        f, dd = r18.mf_stream(x), r18.dsag_stream(s)
        z = r18.fusion(f, dd)
    assert torch.equal(z["g"], f["g"] + dd["g"])
    assert torch.equal(z["l"], f["l"] + dd["l"])


def test_training_without_dsap_explains_where_it_comes_from(r18):
    r18.train()
    with pytest.raises(ValueError, match="_dsap"):
        r18(torch.rand(2, 3, 128, 64))


def test_fused_feature_needs_dsap_and_returns_z():
    torch.manual_seed(0)
    model = build_dsa_reid(5, backbone="resnet18", pretrained=False, feature="fused").eval()
    x, s = torch.rand(2, 3, 64, 32), torch.rand(2, 24, 3, 16, 16)
    with torch.no_grad():
        feat = model(x, s)
        z = model.fusion(model.mf_stream(x), model.dsag_stream(s))
        assert torch.equal(feat, torch.cat([z["g"], z["l"].flatten(1)], 1))
        assert torch.equal(model.inference_module()(x, s), feat)
    with pytest.raises(ValueError, match="_dsap"):
        model(x)


def test_ablation_variants():
    torch.manual_seed(0)
    x, s = torch.rand(4, 3, 64, 32), torch.rand(4, 24, 3, 16, 16)
    glob = build_dsa_reid(5, backbone="resnet18", pretrained=False, branches="global")
    assert sorted(glob.train()(x, s)) == ["f_g", "logits_fg", "logits_zg", "z_g"]
    assert tuple(glob.eval()(x).shape) == (4, 512)
    assert not hasattr(glob.dsag_stream, "conv5_l")
    cat = build_dsa_reid(5, backbone="resnet18", pretrained=False, fusion="concat_fc")
    out = cat.train()(x, s)
    assert tuple(out["z_g"].shape) == (4, 512) and tuple(out["z_l"].shape) == (4, 512)
    base = build_dsa_reid(5, backbone="resnet18", pretrained=False, streams="mf").train()
    out = base(x)  # Baseline (Two branches): no DSAG-Stream, no DSAP
    assert base.dsag_stream is None and torch.equal(out["z_g"], out["f_g"])
    with pytest.raises(ValueError, match="dsag_width"):
        build_dsa_reid(5, backbone="resnet18", pretrained=False, dsag_width=0.5)
    with pytest.raises(ValueError, match="concat_fc"):
        build_dsa_reid(5, backbone="resnet18", pretrained=False, fusion="sum")
    with pytest.raises(ValueError, match="resnet50"):
        build_dsa_reid(5, backbone="resnet34", pretrained=False)


# ---------------------------------------------------------------- layers


def test_grouped_linear_equals_independent_linears():
    torch.manual_seed(0)
    lin = GroupedLinear(3, 4, 5)
    x = torch.randn(2, 3, 4)
    ref = torch.stack([x[:, g] @ lin.weight[g] + lin.bias[g] for g in range(3)], 1)
    assert torch.allclose(lin(x), ref, atol=1e-6)
    cls = TwoFCClassifier(4, 7, hidden_features=6, groups=3)
    assert tuple(cls(x).shape) == (2, 3, 7)
    assert tuple(TwoFCClassifier(4, 7, hidden_features=6)(torch.randn(2, 4)).shape) == (2, 7)


# ---------------------------------------------------------------- loss


def _crafted_outputs(logits_value=0.0, k=3):
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 4.0]])
    z_l = torch.cat([pts, torch.zeros(4, 6)], 1)
    return {
        "logits_fg": torch.full((4, k), logits_value),
        "logits_fl": torch.full((4, 8, k), logits_value),
        "logits_zg": torch.full((4, k), logits_value),
        "logits_zl": torch.full((4, k), logits_value),
        "z_g": pts,
        "z_l": z_l,
    }


def test_dsa_loss_hand_computed_value():
    # uniform logits: every ID loss is log K (with or without smoothing)
    # batch-hard triplet on points (0,0),(1,0) | (3,0),(3,4), margin 0.3:
    #   anchors 0,1,3 give 0; anchor 2: d_ap = 4, d_an = 2 -> 2.3; mean 0.575
    pids = torch.tensor([0, 0, 1, 1])
    total, parts = DSALoss(num_classes=3, part_id_reduction="mean")(_crafted_outputs(), pids)
    log3 = math.log(3)
    for name in ("loss_id_fg", "loss_id_fl", "loss_id_zg", "loss_id_zl"):
        assert parts[name].item() == pytest.approx(log3, abs=1e-6)
    assert parts["loss_tri_zg"].item() == pytest.approx(0.575, abs=1e-6)
    assert parts["loss_tri_zl"].item() == pytest.approx(0.575, abs=1e-6)
    expected = 0.5 * (2 * log3) + 1.5 * (2 * 0.575) + 1.0 * (2 * log3)
    assert total.item() == pytest.approx(expected, abs=1e-5)


def _ref_ce(logits, y, k, eps=0.1):
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    q = np.full(logits.shape, eps / k)
    q[np.arange(len(y)), y] += 1 - eps
    return float(-(q * logp).sum(-1).mean())


def _ref_triplet(x, y, margin=0.3):
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    same = y[:, None] == y[None]
    ap = np.where(same, d, -np.inf).max(1)
    an = np.where(same, np.inf, d).min(1)
    return float(np.maximum(ap - an + margin, 0).mean())


def test_dsa_loss_matches_numpy_reference_and_weights():
    g = torch.Generator().manual_seed(3)
    k, pids = 5, torch.tensor([0, 0, 1, 1, 2, 2])
    out = {
        "logits_fg": torch.randn(6, k, generator=g),
        "logits_fl": torch.randn(6, 8, k, generator=g),
        "logits_zg": torch.randn(6, k, generator=g),
        "logits_zl": torch.randn(6, k, generator=g),
        "z_g": torch.randn(6, 10, generator=g),
        "z_l": torch.randn(6, 16, generator=g),
    }
    loss = DSALoss(k, weight_id_mf=0.2, weight_triplet=2.0, weight_id_fused=0.7, part_id_reduction="mean")
    total, parts = loss(out, pids)
    y, n = pids.numpy(), {key: v.double().numpy() for key, v in out.items()}
    ref = {
        "loss_id_fg": _ref_ce(n["logits_fg"], y, k),
        "loss_id_fl": float(np.mean([_ref_ce(n["logits_fl"][:, i], y, k) for i in range(8)])),
        "loss_tri_zg": _ref_triplet(n["z_g"], y),
        "loss_tri_zl": _ref_triplet(n["z_l"], y),
        "loss_id_zg": _ref_ce(n["logits_zg"], y, k),
        "loss_id_zl": _ref_ce(n["logits_zl"], y, k),
    }
    for name, value in ref.items():
        assert parts[name].item() == pytest.approx(value, abs=1e-5), name
    expected = (0.2 * (ref["loss_id_fg"] + ref["loss_id_fl"]) + 2.0 * (ref["loss_tri_zg"] + ref["loss_tri_zl"])
                + 0.7 * (ref["loss_id_zg"] + ref["loss_id_zl"]))
    assert total.item() == pytest.approx(expected, abs=1e-4)
    # no smoothing: plain cross entropy
    _, plain = DSALoss(k, label_smooth=False)(out, pids)
    ce = torch.nn.functional.cross_entropy(out["logits_fg"], pids).item()
    assert plain["loss_id_fg"].item() == pytest.approx(ce, abs=1e-6)


def test_dsa_part_id_reduction_sum_weighs_each_part():
    g = torch.Generator().manual_seed(5)
    k, pids = 4, torch.tensor([0, 0, 1, 1, 3, 3])
    logits_fl = torch.randn(6, 8, k, generator=g)
    out = {"logits_fl": logits_fl, "z_l": torch.randn(6, 16, generator=g), "logits_zl": torch.randn(6, k, generator=g)}
    y = pids.numpy()
    per_part = [_ref_ce(logits_fl[:, i].double().numpy(), y, k) for i in range(8)]
    assert DSALoss(k).part_id_reduction == "sum"  # the default since the alignment suite (configs/suites/alignment.yaml)
    _, mean_parts = DSALoss(k, branches="local", part_id_reduction="mean")(out, pids)
    total, sum_parts = DSALoss(k, branches="local", part_id_reduction="sum", weight_triplet=0, weight_id_fused=0)(out, pids)
    assert mean_parts["loss_id_fl"].item() == pytest.approx(float(np.mean(per_part)), abs=1e-5)
    assert sum_parts["loss_id_fl"].item() == pytest.approx(float(np.sum(per_part)), abs=1e-4)
    assert total.item() == pytest.approx(0.5 * float(np.sum(per_part)), abs=1e-4)  # 0.5 on every part
    with pytest.raises(ValueError, match="part_id_reduction"):
        DSALoss(k, part_id_reduction="max")


def test_dsa_loss_branch_variants_and_errors():
    out, pids = _crafted_outputs(), torch.tensor([0, 0, 1, 1])
    _, parts = DSALoss(3, branches="global")(out, pids)
    assert sorted(parts) == ["loss_id_fg", "loss_id_zg", "loss_tri_zg"]
    _, parts = DSALoss(3, branches="local", weight_triplet=0)(out, pids)
    assert sorted(parts) == ["loss_id_fl", "loss_id_zl"]
    with pytest.raises(KeyError, match="branches"):
        DSALoss(3)({k: v for k, v in out.items() if k != "z_l"}, pids)
    with pytest.raises(ValueError, match=">= 0"):
        DSALoss(3, weight_triplet=-1)


# ---------------------------------------------------------------- engine


class _StubDataManager:
    """The attributes torchreid's Engine reads, with hand-made batches."""

    def __init__(self, train, query, gallery, num_train_pids):
        self.train_loader = [train]
        self.test_loader = {"toy": {"query": [query], "gallery": [gallery]}}
        self.num_train_pids = num_train_pids
        self.sources = ["toy"]


def _engine(model, lr=1e-3, **kwargs):
    train = _batch()
    query, gallery = _batch(per_id=1, seed=1), _batch(per_id=2, seed=2, camid=1)
    dm = _StubDataManager(train, query, gallery, num_train_pids=3)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return DSAEngine(dm, model, opt, use_gpu=False, **kwargs), train


def test_one_training_step_reduces_the_loss():
    torch.manual_seed(0)
    model = build_dsa_reid(3, backbone="resnet18", pretrained=False).train()
    # the paper's warm-up start lr (Sec. 4.2); without warm-up the unnormalised triplet terms jump up
    engine, batch = _engine(model, lr=8e-6)
    before = engine.forward_backward(batch)
    expected_keys = {"loss", "acc", "loss_id_fg", "loss_id_fl", "loss_tri_zg", "loss_tri_zl",
                     "loss_id_zg", "loss_id_zl"}
    assert set(before) == expected_keys
    assert all(isinstance(v, float) for v in before.values())
    with torch.no_grad():
        after, _ = engine.criterion(model(batch["img"], batch["dsap"]), batch["pid"])
    assert after.item() < before["loss"]


def test_engine_test_uses_mf_feature_and_fused_ablation():
    torch.manual_seed(0)
    model = build_dsa_reid(3, backbone="resnet18", pretrained=False)
    engine, _ = _engine(model)
    rank1 = engine.test(ranks=[1])  # torchreid's evaluation path, model(imgs) only
    assert 0.0 <= rank1 <= 1.0
    fused = build_dsa_reid(3, backbone="resnet18", pretrained=False, feature="fused")
    engine, _ = _engine(fused)
    fused.eval()
    q = _batch(seed=1)
    with torch.no_grad():
        assert torch.equal(engine.eval_features(q), fused(q["img"], q["dsap"]))
    assert 0.0 <= engine.test(ranks=[1]) <= 1.0


def test_engine_from_config_reads_its_keys():
    cfg = CfgNode()
    cfg.use_gpu = False
    cfg.dsa = CfgNode(dict(weight_id_mf=0.25, weight_triplet=1.0, weight_id_fused=2.0, part_id_reduction="sum"))
    cfg.loss = CfgNode(dict(softmax=CfgNode(dict(label_smooth=False)), triplet=CfgNode(dict(margin=0.5))))
    cfg.train = CfgNode(dict(amp="", channels_last=False, checkpoint_every=0))
    model = build_dsa_reid(3, backbone="resnet18", pretrained=False, branches="local")
    dm = _StubDataManager(_batch(), _batch(), _batch(), num_train_pids=3)
    opt = torch.optim.Adam(model.parameters())
    engine = ENGINES.get("dsa").from_config(cfg, dm, model, opt, None)
    c = engine.criterion
    assert (c.weight_id_mf, c.weight_triplet, c.weight_id_fused) == (0.25, 1.0, 2.0)
    assert c.criterion_id.eps == 0 and c.criterion_triplet.margin == 0.5
    assert c.branches == "local" and c.part_id_reduction == "sum"


# ---------------------------------------------------------------- torchreid utilities


def test_feature_extractor_and_load_pretrained_weights(tmp_path):
    torch.manual_seed(0)
    model = compat.models.build_model("dsa_reid_r18", num_classes=1, pretrained=False, use_gpu=False).eval()
    path = str(tmp_path / "dsa_r18.pth.tar")
    torch.save({"state_dict": model.state_dict()}, path)
    extractor = compat.utils.FeatureExtractor(
        model_name="dsa_reid_r18", model_path=path, image_size=(128, 64), device="cpu", verbose=False
    )
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (128, 64, 3), dtype=np.uint8) for _ in range(3)]
    feats = extractor(images)
    assert tuple(feats.shape) == (3, 1024)
    x = torch.stack([extractor.preprocess(extractor.to_pil(im)) for im in images])
    with torch.no_grad():
        assert torch.allclose(feats, model(x), atol=1e-5)  # every weight was loaded
    num_params, flops = compat.utils.compute_model_complexity(model, (1, 3, 128, 64))
    assert num_params == sum(p.numel() for p in model.inference_module().parameters())
    assert flops > 0


def test_one_training_step_on_synthreid_tiny_reduces_the_loss(tmp_path):
    """A real `synthreid_tiny_dsap` batch (estimated IUV sidecars, DSAP 16x16) through DSAEngine."""
    from torchreid_dense.data import DenseImageDataManager

    torch.manual_seed(0)
    dm = DenseImageDataManager(root=str(tmp_path), sources="synthreid_tiny_dsap", height=64, width=32,
                               batch_size_train=16, workers=0, train_sampler="RandomIdentitySampler",
                               num_instances=4, use_gpu=False, dense=dict(size=16))
    batch = next(iter(dm.train_loader))
    assert batch["dsap"].shape == (16, 24, 3, 16, 16) and batch["dsap_valid"].any()
    model = build_dsa_reid(dm.num_train_pids, backbone="resnet18", pretrained=False).train()
    engine = DSAEngine(dm, model, torch.optim.Adam(model.parameters(), lr=8e-6), use_gpu=False)
    before = engine.forward_backward(batch)
    with torch.no_grad():
        after, _ = engine.criterion(model(batch["img"], batch["dsap"]), batch["pid"])
    assert after.item() < before["loss"]
