"""SAN (AAAI 2020): models, losses, PIT data, engines. Small ResNet-18 models at 32x16 input."""
import os.path as osp
import types

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import torchreid_dense  # noqa: F401  (registers into torchreid)
from torchreid_dense import compat
from torchreid_dense.data.pit import PITDataManager, PITDataset, pit_group, split_pit_by_texture
from torchreid_dense.data.texture_io import TextureReadError, empty_texture, load_texture
from torchreid_dense.engine import SANEngine, SANPGEngine
from torchreid_dense.engine.pit import build_pit_loader
from torchreid_dense.engine.texture_eval import evaluate_texture_l1
from torchreid_dense.losses import ReconstructionLoss, SANLoss, TripletReIDConstraint
from torchreid_dense.losses.triplet_reid import sample_triplets
from torchreid_dense.models.san import SADecoder, build_san, load_san_pg_weights
from torchreid_dense.registry import ENGINES, LOSSES, MODELS

H, W = 32, 16
TEX = (24, 16)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


FAST_WIDTHS = (32, 16, 16, 8)  # a narrow decoder keeps the engine tests fast on CPU


def small_san(num_classes=4, decoder_widths=FAST_WIDTHS, **kw):
    torch.manual_seed(0)
    return build_san(num_classes, "resnet18", pretrained=False, texture_size=TEX,
                     decoder_widths=decoder_widths, **kw)


def count(module):
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- models

def test_registry_entries_and_engines():
    assert MODELS.meta("san")["engine"] == "san"
    assert MODELS.meta("san_r18")["engine"] == "san"
    assert MODELS.meta("san_pg")["engine"] == "san_pg"
    assert MODELS.meta("san_pg_r18")["engine"] == "san_pg"
    assert ENGINES.get("san") is SANEngine and ENGINES.get("san_pg") is SANPGEngine
    assert LOSSES.get("triplet_reid_constraint") is TripletReIDConstraint
    assert LOSSES.get("reconstruction") is ReconstructionLoss and LOSSES.get("san") is SANLoss
    # torchreid's build_model passes no extra kwargs: defaults apply
    model = compat.models.build_model("san_r18", num_classes=7, pretrained=False)
    assert model.classifier.out_features == 7 and model.texture_size == (240, 160)
    model = MODELS.get("san_r18")(7, pretrained=False, texture_size=TEX)
    assert model.texture_size == TEX
    with pytest.raises(TypeError, match="unexpected keyword"):
        MODELS.get("san_r18")(7, pretrained=False, textur_size=TEX)


def test_training_and_eval_outputs():
    model = small_san(decoder_widths=None)  # the default r18 decoder (320, 160, 80, 40)
    imgs = torch.randn(4, 3, H, W)
    model.train()
    out = model(imgs)
    assert out["logits"].shape == (4, 4)
    assert out["feature"].shape == (4, 512)
    assert [tuple(f.shape) for f in out["dec_feats"]] == [(4, 320, 4, 2), (4, 160, 8, 4), (4, 80, 16, 8)]
    assert out["texture"].shape == (4, 3) + TEX
    model.eval()
    with torch.no_grad():
        f = model(imgs)
        assert f.shape == (4, 512)
        assert torch.equal(f, model.inference_module()(imgs))
        assert model.predict_texture(imgs).shape == (4, 3) + TEX


def test_sa_enc_control_skips_the_decoder_with_identical_loss_and_gradients():
    """L_Rec and L_TR off (the SA-Enc-alone control): no SA-Dec forward, the same loss and encoder gradients."""
    control = SANLoss(num_classes=4, weight_rec=0.0, weight_tr=0.0)
    assert not control.uses_decoder
    assert SANLoss(num_classes=4, weight_rec=0.0).uses_decoder and SANLoss(num_classes=4, weight_tr=0.0).uses_decoder
    imgs, pids = torch.randn(8, 3, H, W), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    results = []
    for with_texture in (True, False):
        model = small_san()
        model.train()
        out = model(imgs, with_texture=with_texture)
        assert ("texture" in out) == with_texture and ("dec_feats" in out) == with_texture
        loss, parts = control(out, pids)
        loss.backward()
        grads = [p.grad.clone() for p in model.encoder.parameters()]
        assert all(p.grad is None for p in model.decoder.parameters())  # no term reads SA-Dec either way
        results.append((loss.detach(), {k: v.clone() for k, v in parts.items()}, grads))
    (loss_a, parts_a, grads_a), (loss_b, parts_b, grads_b) = results
    assert torch.equal(loss_a, loss_b) and parts_a.keys() == parts_b.keys() == {"loss_id", "loss_triplet"}
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_id_heads_bnneck_and_linear():
    imgs = torch.randn(4, 3, H, W)
    bnneck, linear = small_san(id_head="bnneck").train(), small_san(id_head="linear").train()
    out = bnneck(imgs)
    # BNNeck: logits = FC(BN(f)) with the batch statistics in training, no FC bias, BN shift frozen at 0
    f = out["feature"]
    bn_f = (f - f.mean(0)) / torch.sqrt(f.var(0, unbiased=False) + bnneck.classifier.bn.eps)
    torch.testing.assert_close(out["logits"], bn_f @ bnneck.classifier.fc.weight.t(), rtol=1e-4, atol=1e-5)
    assert bnneck.classifier.fc.bias is None and not bnneck.classifier.bn.bias.requires_grad
    # the paper's head: logits = W f + b
    out = linear(imgs)
    torch.testing.assert_close(out["logits"], torch.nn.functional.linear(out["feature"], linear.classifier.weight,
                                                                         linear.classifier.bias))
    # inference is the encoder alone for both (same weights, same f): the head adds no test-time cost
    linear.encoder.load_state_dict(bnneck.encoder.state_dict())
    with torch.no_grad():
        assert torch.equal(bnneck.eval()(imgs), linear.eval()(imgs))
    # texture_only runs the encoder and decoder alone: the BNNeck's statistics stay untouched
    bnneck.train()
    before = bnneck.classifier.bn.running_mean.clone()
    assert bnneck(imgs, texture_only=True).shape == (4, 3) + TEX
    assert torch.equal(bnneck.classifier.bn.running_mean, before)
    with pytest.raises(KeyError, match="id_head"):
        small_san(id_head="arcface")


def test_san_pg_returns_texture_in_both_modes():
    torch.manual_seed(0)
    pg = MODELS.get("san_pg_r18")(0, pretrained=False, texture_size=TEX, decoder_widths=FAST_WIDTHS)
    assert pg.classifier is None
    imgs = torch.randn(2, 3, H, W)
    assert pg.train()(imgs).shape == (2, 3) + TEX
    assert pg.eval()(imgs).shape == (2, 3) + TEX


@pytest.mark.parametrize("tex", [(256, 256), (240, 160), (50, 30)])
def test_decoder_output_follows_texture_size(tex):
    dec = SADecoder(512, texture_size=tex, widths=(8, 8, 8, 8))
    fe4 = torch.randn(1, 512, 16, 8)  # a 256x128 image through the last-stride-1 encoder
    texture, feats = dec(fe4)
    assert texture.shape == (1, 3) + tex
    first = (-(-tex[0] // 16) * 2, -(-tex[1] // 16) * 2)
    assert tuple(feats[0].shape[-2:]) == first


def _resnet_reference(block, layers):
    """torchreid's own ResNet with last stride 1 (an independent implementation of the SA-Enc)."""
    return compat.models.resnet.ResNet(
        num_classes=10, loss="softmax", block=block, layers=layers, last_stride=1
    )


def test_inference_graph_equals_baseline_r18_numerically():
    model = small_san(10).eval()
    ref = _resnet_reference(compat.models.resnet.BasicBlock, [2, 2, 2, 2]).eval()
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("classifier")}
    missing, unexpected = model.encoder.load_state_dict(state, strict=False)
    assert missing == [] and unexpected == []
    imgs = torch.randn(2, 3, H, W)
    with torch.no_grad():
        torch.testing.assert_close(model(imgs), ref(imgs), rtol=1e-5, atol=1e-5)
        assert model.encoder.featuremaps(imgs).shape == ref.featuremaps(imgs).shape == (2, 512, 2, 1)


@pytest.mark.parametrize("backbone,name,dim", [("resnet18", "resnet18", 512), ("resnet50", "resnet50", 2048)])
def test_inference_param_count_equals_torchreid_baseline(backbone, name, dim):
    model = build_san(10, backbone, pretrained=False)
    ref = compat.models.build_model(name, num_classes=10, pretrained=False)
    ref_count = sum(p.numel() for n, p in ref.named_parameters() if not n.startswith("classifier."))
    assert count(model.inference_module()) == ref_count
    assert count(model.encoder) == ref_count
    assert model.feature_dim == ref.feature_dim == dim
    # the decoder and classifier are outside the inference path
    assert count(model) == ref_count + count(model.decoder) + count(model.classifier)


def _decoder_formula(in_ch, widths):
    """Independent count: each block 3x3(in,out) + 3x3(out,out) + 1x1(in,out), 3 BNs; 3x3 conv to RGB."""
    total, c = 0, in_ch
    for w in widths:
        total += 9 * c * w + 9 * w * w + c * w + 3 * 2 * w
        c = w
    return total + 9 * c * 3 + 3


@pytest.mark.parametrize("backbone,in_ch,widths,expected_ratio", [
    ("resnet50", 2048, (288, 144, 72, 36), 0.3164),
    ("resnet18", 512, (320, 160, 80, 40), 0.3167),
])
def test_decoder_is_about_a_third_of_the_encoder(backbone, in_ch, widths, expected_ratio):
    model = build_san(10, backbone, pretrained=False)
    dec = count(model.decoder)
    assert dec == _decoder_formula(in_ch, widths)
    ratio = dec / count(model.encoder)
    assert 0.30 <= ratio <= 0.36  # "about 1/3 of the SA-Enc" (Sec. 4.2)
    assert ratio == pytest.approx(expected_ratio, abs=5e-4)


# ----------------------------------------------------------------------------- losses

def test_triplet_reid_constraint_hand_computed():
    # pids [0, 0, 1]: anchors 0 and 1 each have exactly one positive (each other) and one negative
    # (sample 2); sample 2 is a single-image identity and is not an anchor.
    # maps [B, C=1, H=1, W=2], h*w = 2:
    #   F0 = [2, 0], F1 = [0, 1], F2 = [1, 0]
    #   anchor 0: d_ap = (4 + 1)/2 = 2.5, d_an = (1 + 0)/2 = 0.5 -> 2.5 - 0.5 + 0.3 = 2.3
    #   anchor 1: d_ap = 2.5,            d_an = (1 + 1)/2 = 1.0 -> 2.5 - 1.0 + 0.3 = 1.8
    #   mean = 2.05
    vals = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    pids = torch.tensor([0, 0, 1])
    crit = TripletReIDConstraint(margin=0.3)
    loss = crit(vals.view(3, 1, 1, 2).requires_grad_(), pids)
    assert loss.item() == pytest.approx(2.05, abs=1e-6)
    # same numbers as [B, C=2, 1, 1]: h*w = 1, distances double:
    #   anchor 0: 5 - 1 + 0.3 = 4.3; anchor 1: 5 - 2 + 0.3 = 3.3; mean 3.8
    assert crit(vals.view(3, 2, 1, 1), pids).item() == pytest.approx(3.8, abs=1e-6)
    # hinge: a large negative distance gives 0 for that anchor
    far = torch.tensor([[2.0, 0.0], [0.0, 1.0], [10.0, 0.0]]).view(3, 1, 1, 2)
    # anchor 0: 2.5 - 64/2 + 0.3 < 0 -> 0; anchor 1: 2.5 - (100 + 1)/2 + 0.3 < 0 -> 0
    assert crit(far, pids).item() == 0.0


def test_triplet_reid_constraint_normalize_all_divides_by_channels():
    """normalize='all': squared distances over c*h*w; crafted: anchor 0, positive 1 (distance 0), negative 2."""
    feats = torch.zeros(3, 2, 1, 2)
    feats[2] = torch.tensor([[[1.0, 3.0]], [[0.0, 2.0]]])  # |a - n|^2 = 1 + 9 + 0 + 4 = 14
    pids = torch.tensor([0, 0, 1])
    anchor_loss = {"spatial": max(0.0, 0 - 14 / 2 + 10.0), "all": max(0.0, 0 - 14 / 4 + 10.0)}  # margin 10
    for normalize, expected in anchor_loss.items():
        crit = TripletReIDConstraint(margin=10.0, normalize=normalize)
        g = torch.Generator().manual_seed(0)
        pos, neg, valid = sample_triplets(pids, torch.Generator().manual_seed(0))
        got = crit(feats, pids, generator=g)
        # anchors 0 and 1 have positive (each other) and negative 2; anchor 2 has no positive
        assert valid.tolist() == [True, True, False] and neg[:2].tolist() == [2, 2]
        assert float(got) == pytest.approx(expected)
    with pytest.raises(ValueError, match="normalize must be one of"):
        TripletReIDConstraint(normalize="channels")
    assert SANLoss(num_classes=2, tr_normalize="all").criterion_tr.normalize == "all"


def test_triplet_reid_constraint_no_valid_anchor_keeps_graph():
    crit = TripletReIDConstraint()
    for pids in (torch.tensor([0, 1, 2, 3]), torch.tensor([5, 5, 5, 5])):
        feats = torch.randn(4, 3, 2, 2, requires_grad=True)
        loss = crit(feats, pids)
        assert loss.item() == 0.0 and loss.requires_grad
        loss.backward()
        assert torch.equal(feats.grad, torch.zeros_like(feats))


def test_triplet_reid_constraint_matches_loop_reference_with_generator():
    torch.manual_seed(1)
    feats = torch.randn(10, 4, 3, 2)
    pids = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])  # pid 2 has a single image
    pos, neg, valid = sample_triplets(pids, torch.Generator().manual_seed(7))
    expected, n = 0.0, 0
    for a in range(10):
        if not valid[a]:
            continue
        assert pids[pos[a]] == pids[a] and pos[a] != a and pids[neg[a]] != pids[a]
        d_ap = ((feats[a] - feats[pos[a]]) ** 2).sum() / 6
        d_an = ((feats[a] - feats[neg[a]]) ** 2).sum() / 6
        expected += max(float(d_ap - d_an) + 0.5, 0.0)
        n += 1
    assert valid.tolist() == [True] * 5 + [False] + [True] * 4 and n == 9
    loss = TripletReIDConstraint(0.5)(feats, pids, generator=torch.Generator().manual_seed(7))
    assert loss.item() == pytest.approx(expected / n, rel=1e-5)
    # generator reproducibility, and the draw is random (several positives are picked over draws)
    crit = TripletReIDConstraint(0.5, generator=torch.Generator().manual_seed(3))
    again = TripletReIDConstraint(0.5, generator=torch.Generator().manual_seed(3))
    assert crit(feats, pids).item() == again(feats, pids).item()
    g = torch.Generator().manual_seed(0)
    picks = {int(sample_triplets(pids, g)[0][6]) for _ in range(50)}
    assert picks == {7, 8, 9}


def test_reconstruction_loss_with_mask():
    pred = torch.zeros(1, 3, 2, 2, requires_grad=True)
    target = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(1, 3, 2, 2)
    crit = ReconstructionLoss()
    assert crit(pred, target).item() == pytest.approx(2.5)
    top_row = torch.tensor([[True, True], [False, False]]).view(1, 1, 2, 2)
    assert crit(pred, target, top_row).item() == pytest.approx(1.5)  # (1 + 2) / 2
    loss = crit(pred.half(), target.half(), top_row)
    assert loss.dtype == torch.float32
    none = crit(pred, target, torch.zeros(1, 1, 2, 2, dtype=torch.bool))
    assert none.item() == 0.0 and none.requires_grad
    none.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))
    with pytest.raises(ValueError, match="texture_size"):
        crit(pred, torch.zeros(1, 3, 4, 4))


def test_pit_batch_gives_no_id_or_triplet_gradient():
    model = small_san().train()
    crit = SANLoss(num_classes=4)
    imgs = torch.randn(4, 3, H, W)
    target = torch.randn(4, 3) [..., None, None].expand(4, 3, *TEX)
    loss, parts = crit(model(imgs), rec_target=target, pit=True)
    assert set(parts) == {"loss_rec"}
    loss.backward()
    assert all(p.grad is None for p in model.classifier.parameters())
    assert model.encoder.conv1.weight.grad.abs().sum() > 0
    assert model.decoder.to_texture.weight.grad.abs().sum() > 0
    # a re-ID batch does reach the classifier, with all four terms
    model.zero_grad(set_to_none=True)
    pids = torch.tensor([0, 0, 1, 1])
    loss, parts = crit(model(imgs), pids, target, torch.ones(4, 1, *TEX, dtype=torch.bool))
    assert set(parts) == {"loss_rec", "loss_id", "loss_triplet", "loss_tr"}
    loss.backward()
    assert all(p.grad.abs().sum() > 0 for p in model.classifier.parameters() if p.requires_grad)


def test_san_loss_weights_and_tr_reduction():
    torch.manual_seed(0)
    pids = torch.tensor([0, 0, 1, 1])
    outputs = {
        "logits": torch.randn(4, 3), "feature": torch.randn(4, 8),
        "dec_feats": [torch.randn(4, 2, 2, 2) for _ in range(3)], "texture": torch.randn(4, 3, 2, 2),
    }
    target = torch.randn(4, 3, 2, 2)
    mean_crit = SANLoss(3, tr_margin=5.0, generator=torch.Generator().manual_seed(0))
    sum_crit = SANLoss(3, tr_margin=5.0, tr_reduction="sum", generator=torch.Generator().manual_seed(0))
    total, parts = mean_crit(outputs, pids, target)
    assert all(isinstance(v, torch.Tensor) and not v.requires_grad for v in parts.values())  # detached tensors
    parts = {k: v.item() for k, v in parts.items()}
    expected = 0.5 * parts["loss_id"] + 1.5 * parts["loss_triplet"] + parts["loss_rec"] + parts["loss_tr"]
    assert total.item() == pytest.approx(expected, rel=1e-6)
    _, parts_sum = sum_crit(outputs, pids, target)
    assert parts_sum["loss_tr"].item() == pytest.approx(3 * parts["loss_tr"], rel=1e-6)
    basic = SANLoss(3, weight_tr=0.0)  # SAN-basic: no TR term
    assert "loss_tr" not in basic(outputs, pids, target)[1]
    with pytest.raises(ValueError, match=">= 0"):
        SANLoss(3, weight_id=-1)


# ----------------------------------------------------------------------------- data

def _write_pit(ds_dir, n_textures=3, views=2, tex_hw=(24, 16)):
    rng = np.random.RandomState(0)
    for t in range(n_textures):
        texture = rng.randint(0, 256, size=tex_hw + (3,), dtype=np.uint8)
        for v in range(views):
            stem = f"t{t:04d}_v{v:02d}"
            img = rng.randint(0, 256, size=(H, W, 3), dtype=np.uint8)
            (ds_dir / "pit").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(ds_dir / "pit" / f"{stem}.jpg")
            (ds_dir / "textures" / "pit").mkdir(parents=True, exist_ok=True)
            Image.fromarray(texture).save(ds_dir / "textures" / "pit" / f"{stem}.png")


def test_load_texture_normalises_resizes_and_reads_alpha(tmp_path):
    rgb = np.zeros((8, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 0, 51
    Image.fromarray(rgb).save(tmp_path / "a.png")
    tex, valid = load_texture(tmp_path / "a.png", (16, 8), MEAN, STD)
    assert tex.shape == (3, 16, 8) and valid.shape == (1, 16, 8) and bool(valid.all())
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (0.2 - 0.406) / 0.225]
    torch.testing.assert_close(tex[:, 5, 3], torch.tensor(expected), rtol=0, atol=1e-5)
    rgba = np.concatenate([rgb, np.zeros((8, 4, 1), dtype=np.uint8)], axis=2)
    rgba[:4, :, 3] = 255  # top half valid
    Image.fromarray(rgba, "RGBA").save(tmp_path / "b.png")
    _, valid = load_texture(tmp_path / "b.png", (8, 4), MEAN, STD)
    assert valid[0, :4].all() and not valid[0, 4:].any()
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(TextureReadError, match="bad.png"):
        load_texture(tmp_path / "bad.png", (8, 4))
    with pytest.raises(TextureReadError, match="nope.png"):
        load_texture(tmp_path / "nope.png", (8, 4))
    tex, valid = empty_texture((4, 2))
    assert tex.shape == (3, 4, 2) and not valid.any()


def test_pit_dataset_split_and_loader(tmp_path):
    _write_pit(tmp_path, n_textures=4, views=2)
    ds = PITDataset(tmp_path, H, W, TEX, MEAN, STD)
    assert len(ds) == 8
    sample = ds[0]
    assert sample["img"].shape == (3, H, W) and sample["texture"].shape == (3,) + TEX
    assert sample["texture_valid"].all()
    assert pit_group("/x/pit/t0003_v07.jpg") == "t0003"
    train, val = split_pit_by_texture(PITDataset.list_images(tmp_path), val_fraction=0.25, seed=0)
    assert len(val) == 2 and len(train) == 6
    assert not ({pit_group(p) for p in train} & {pit_group(p) for p in val})
    loader = build_pit_loader(tmp_path, H, W, TEX, batch_size=3, split="train", val_fraction=0.25)
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["img"].shape == (3, 3, H, W)  # drop_last
    with pytest.raises(FileNotFoundError, match="no PIT images"):
        PITDataset.list_images(tmp_path / "empty")
    (tmp_path / "textures" / "pit" / "t0000_v00.png").unlink()
    with pytest.raises(FileNotFoundError, match="t0000_v00.png"):
        PITDataset(tmp_path, H, W, TEX)


# ----------------------------------------------------------------------------- engines

def _reid_batch(n_ids=3, per_id=2):
    g = torch.Generator().manual_seed(0)
    b = n_ids * per_id
    return {
        "img": torch.randn(b, 3, H, W, generator=g),
        "pid": torch.arange(n_ids).repeat_interleave(per_id),
        "camid": torch.zeros(b, dtype=torch.long),
        "texture": torch.randn(b, 3, *TEX, generator=g),
        "texture_valid": torch.ones(b, 1, *TEX, dtype=torch.bool),
    }


def _stub_datamanager(batch, num_pids):
    return types.SimpleNamespace(train_loader=[batch], test_loader={}, num_train_pids=num_pids, sources=[])


def test_san_engine_step_reduces_loss_on_its_batch():
    batch = _reid_batch()
    model = small_san(4)
    # random data give gradient norms ~1e3: a small step stays in the first-order regime
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    # the same seed in the engine and in the measurement: the same TR triplets, the same objective
    engine = SANEngine(_stub_datamanager(batch, 4), model, optimizer, use_gpu=False,
                       generator=torch.Generator().manual_seed(0))

    def batch_loss():
        crit = SANLoss(4, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = model.train()(batch["img"])
            return crit(out, batch["pid"], batch["texture"], batch["texture_valid"])[0].item()

    before = batch_loss()
    summary = engine.forward_backward(batch)
    assert set(summary) == {"loss", "acc", "loss_id", "loss_triplet", "loss_rec", "loss_tr", "no_texture"}
    assert summary["no_texture"] == 0.0  # every image of the batch has its texture
    assert summary["loss"] == pytest.approx(before, rel=1e-5)
    assert summary["loss"] == pytest.approx(0.5 * summary["loss_id"] + 1.5 * summary["loss_triplet"]
                                            + summary["loss_rec"] + summary["loss_tr"], rel=1e-5)
    assert batch_loss() < before


def test_san_engine_interleaves_and_cycles_pit_batches(tmp_path):
    _write_pit(tmp_path, n_textures=1, views=2)  # one PIT batch per pass over the loader
    batch = _reid_batch()
    model = small_san(4)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    engine = SANEngine(_stub_datamanager(batch, 4), model, opt, use_gpu=False,
                       pit_loader=build_pit_loader(tmp_path, H, W, TEX, batch_size=2), pit_every=2)
    has_pit = ["loss_pit_rec" in engine.forward_backward(batch) for _ in range(4)]
    assert has_pit == [False, True, False, True]  # one PIT batch after every 2 re-ID batches


def test_san_engine_image_target_and_missing_texture():
    batch = _reid_batch()
    no_texture = {k: v for k, v in batch.items() if not k.startswith("texture")}
    model = small_san(4)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    engine = SANEngine(_stub_datamanager(no_texture, 4), model, opt, use_gpu=False, rec_target="image")
    assert "loss_rec" in engine.forward_backward(no_texture)
    engine = SANEngine(_stub_datamanager(no_texture, 4), model, opt, use_gpu=False)
    with pytest.raises(KeyError, match="_texture"):
        engine.forward_backward(no_texture)


def test_pit_step_leaves_classifier_untouched(tmp_path):
    _write_pit(tmp_path, n_textures=2, views=2)
    model = small_san(4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    engine = SANEngine(_stub_datamanager(_reid_batch(), 4), model, opt, use_gpu=False,
                       pit_loader=build_pit_loader(tmp_path, H, W, TEX, batch_size=2))
    cls_before = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    enc_before = model.encoder.conv1.weight.detach().clone()
    out = engine.pit_step()
    assert out["loss_pit_rec"] > 0
    assert all(torch.equal(v, cls_before[k]) for k, v in model.classifier.state_dict().items())
    assert not torch.equal(model.encoder.conv1.weight, enc_before)


def _save_pg(tmp_path, pg, prefix=""):
    path = tmp_path / "san_pg.pth.tar"
    torch.save({"state_dict": {prefix + k: v for k, v in pg.state_dict().items()}, "epoch": 3}, path)
    return str(path)


def test_load_san_pg_weights_round_trip(tmp_path):
    torch.manual_seed(1)
    pg = build_san(0, "resnet18", pretrained=False, texture_size=TEX, reid_head=False,
                   decoder_widths=FAST_WIDTHS)
    for p in pg.parameters():  # make the weights distinguishable from a fresh init
        p.data.add_(0.01)
    path = _save_pg(tmp_path, pg, prefix="module.")
    model = small_san(4)
    cls_before = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    report = load_san_pg_weights(model, path, verbose=False)
    assert len(report["loaded"]) == len([k for k in model.state_dict() if k.startswith(("encoder.", "decoder."))])
    assert report["kept"] == ["classifier." + k for k in model.classifier.state_dict()] and report["ignored"] == []
    for k, v in pg.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert all(torch.equal(v, cls_before[k]) for k, v in model.classifier.state_dict().items())
    imgs = torch.randn(2, 3, H, W)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().predict_texture(imgs), pg.eval()(imgs))
    wrong = small_san(4, decoder_widths=(32, 16, 16, 16))
    with pytest.raises(ValueError, match="shape mismatches"):
        load_san_pg_weights(wrong, path, verbose=False)
    with pytest.raises(FileNotFoundError, match="san_pg"):
        load_san_pg_weights(model, str(tmp_path / "absent.pth"))


def _cfg(pit_root, init_weights="", use_pit=True, use_tr=True):
    from torchreid_dense.config import get_default_config

    cfg = get_default_config()
    cfg.use_gpu = False
    cfg.data.height, cfg.data.width, cfg.data.workers = H, W, 0
    cfg.train.batch_size = 2
    cfg.san.pit_root = str(pit_root)
    cfg.san.pit_ratio = 1
    cfg.san.use_pit, cfg.san.use_tr = use_pit, use_tr
    cfg.san.init_weights = init_weights
    return cfg


def test_engines_from_config_and_san_pg_test(tmp_path):
    _write_pit(tmp_path, n_textures=4, views=2)
    pg = build_san(0, "resnet18", pretrained=False, texture_size=TEX, reid_head=False,
                   decoder_widths=FAST_WIDTHS)
    opt = torch.optim.Adam(pg.parameters(), lr=1e-3)
    pg_engine = SANPGEngine.from_config(_cfg(tmp_path), None, pg, opt, None)
    assert isinstance(pg_engine.datamanager, PITDataManager)
    batch = next(iter(pg_engine.train_loader))
    assert set(pg_engine.forward_backward(batch)) == {"loss_rec"}
    assert pg_engine.test() == 0.0  # the "rank1" torchreid's run stores: SAN-PG has none
    l1 = pg_engine.last_metrics["pit_val"]["texture_l1"]
    state = pg_engine.checkpoint_state(epoch=1, batch=0)  # the held-out L1 in fields of its own
    assert state["rank1"] == 0.0 and state["texture_l1"] == l1
    assert state["texture_l1_pixel"] == pg_engine.last_metrics["pit_val"]["texture_l1_pixel"]
    val = pg_engine.datamanager.val_loader
    assert len(val.dataset) == 2  # 1 of 4 textures held out (san.pit_val_fraction default 0.1, at least 1)
    res = evaluate_texture_l1(pg, val, STD)
    assert l1 == pytest.approx(res["l1"])
    with torch.no_grad():  # independent: ReconstructionLoss over the whole held-out set at once
        all_b = next(iter(torch.utils.data.DataLoader(val.dataset, batch_size=len(val.dataset))))
        ref = ReconstructionLoss()(pg.eval()(all_b["img"]), all_b["texture"], all_b["texture_valid"])
    assert l1 == pytest.approx(ref.item(), rel=1e-5)

    path = _save_pg(tmp_path, pg)
    model = small_san(4)
    engine = SANEngine.from_config(_cfg(tmp_path, init_weights=path, use_tr=False),
                                   _stub_datamanager(_reid_batch(), 4), model,
                                   torch.optim.Adam(model.parameters(), lr=1e-3), None)
    assert torch.equal(model.decoder.to_texture.weight, pg.decoder.to_texture.weight)
    assert engine.criterion.weight_tr == 0.0 and engine.pit_loader is not None
    assert "loss_tr" not in engine.forward_backward(_reid_batch())
    with pytest.raises(ValueError, match="san.pit_root"):
        SANEngine.from_config(_cfg(""), _stub_datamanager(_reid_batch(), 4), model, opt, None)
    # pit_root '' falls back to the training data set's directory
    dm = _stub_datamanager(_reid_batch(), 4)
    dm.train_loader = types.SimpleNamespace(dataset=types.SimpleNamespace(dataset_dir=str(tmp_path)))
    assert SANEngine.from_config(_cfg(""), dm, model, opt, None).pit_loader is not None


def test_model_kwargs_from_config():
    from torchreid_dense.models.san import san_cfg_kwargs

    cfg = _cfg("")
    cfg.san.texture_size, cfg.san.decoder_widths, cfg.san.id_head = [], [], ""
    assert san_cfg_kwargs(cfg) == {}
    cfg.san.texture_size = [256, 256]
    cfg.san.decoder_widths = [16, 16, 8, 8]
    cfg.san.id_head = "linear"
    assert san_cfg_kwargs(cfg) == {"texture_size": (256, 256), "decoder_widths": (16, 16, 8, 8), "id_head": "linear"}
    assert MODELS.meta("san")["cfg_kwargs"] is san_cfg_kwargs
