"""SAN authors' released model (issue 26 point 1; docs/san_authors_code.md §3): the U-Net SA-Dec (``san.decoder
unet``), the fc512 head (``san.id_head fc512``), ``san.tr_blocks`` and ``load_san_pg_weights(decoder=False)``."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import torchreid_dense  # noqa: F401  (registers into torchreid)
from torchreid_dense.config import get_default_config
from torchreid_dense.export import check_export, export_torchscript, exported_signature
from torchreid_dense.models.build import build_model_from_config
from torchreid_dense.models.san import (
    ResidualUpBlock, SADecoder, UNetSADecoder, build_san, load_san_pg_weights, san_cfg_kwargs,
)
from torchreid_dense.registry import MODELS

H, W = 64, 32  # small R18 inputs: layer1 16x8, layer2 8x4, layer3 / fe4 4x2


def count(module):
    return sum(p.numel() for p in module.parameters())


def _unet_formula(c4, skips, reduce, widths):
    """Independent count of the authors' ConvResDecoder (docs/san_authors_code.md §3.3): 1x1 conv (bias) + BN for
    the reduction and the 3 embeddings; per up-block two bias-free 3x3 convs + 2 BNs at the input width and a
    3x3 conv (bias) to the output width; a 7x7 conv (bias) to RGB."""
    c1, c2, c3 = skips
    total = sum(cin * cout + 3 * cout for cin, cout in ((c4, reduce), (c3, reduce), (c2, widths[0]), (c1, widths[1])))
    c = reduce
    for w in widths:
        total += 2 * 9 * c * c + 2 * 2 * c + 9 * c * w + w
        c = w
    return total + 49 * c * 3 + 3


@pytest.fixture(scope="module")
def r50():
    """ResNet-50 SAN with the authors' decoder and head, 256x256 textures (their stretch of 256x128)."""
    torch.manual_seed(0)
    return build_san(10, "resnet50", pretrained=False, texture_size=(256, 256), decoder="unet", id_head="fc512")


def small(decoder="unet", texture_size=(H, W), **kw):
    torch.manual_seed(0)
    return build_san(4, "resnet18", pretrained=False, texture_size=texture_size, decoder=decoder, **kw)


# ----------------------------------------------------------------------------- U-Net SA-Dec

def test_unet_r50_parameter_count_matches_the_authors(r50):
    dec = r50.decoder
    assert isinstance(dec, UNetSADecoder)
    assert count(dec) == 9_071_075 == _unet_formula(2048, (256, 512, 1024), 512, (256, 64, 32, 16))
    # per module, the reading's table (docs/san_authors_code.md §3.3, rows a-i)
    parts = [dec.reduce, dec.embed3, *dec.blocks[:1], dec.embed2, dec.blocks[1], dec.embed1, *dec.blocks[2:],
             dec.to_texture]
    assert [count(m) for m in parts] == [1_050_112, 525_824, 5_900_544, 131_840, 1_328_192, 16_576, 92_448,
                                         23_184, 2_355]
    # 0.386 of the bare backbone (the reading's ratio); the fc512 head adds 1,050,112 to inference
    assert count(r50.encoder) == 23_508_032 and count(r50.embedding) == 1_050_112
    assert count(r50.inference_module()) == 24_558_144  # the authors' count_num_param (no classifier)


def test_unet_r50_shapes_at_256x128(r50):
    x = torch.randn(1, 3, 256, 128)
    r50.eval()
    with torch.no_grad():
        fe4, skips = r50.encoder.featuremaps(x, return_skips=True)
        assert tuple(fe4.shape) == (1, 2048, 16, 8)
        assert [tuple(s.shape) for s in skips] == [(1, 256, 64, 32), (1, 512, 32, 16), (1, 1024, 16, 8)]
        assert torch.equal(r50.encoder.featuremaps(x), fe4)  # the residual decoder's input is unchanged
        texture, feats = r50.decoder(fe4, *skips)
    assert tuple(texture.shape) == (1, 3, 256, 256)
    assert [tuple(f.shape) for f in feats] == [(1, 256, 32, 16), (1, 64, 64, 32), (1, 32, 128, 64),
                                                (1, 16, 256, 128)]


def test_unet_init_is_xavier_002_and_bn_n1_002(r50):
    convs = [m for m in r50.decoder.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 + 3 * 4 + 1  # reduce + 3 embeddings, 3 convs per up-block, the 7x7
    for m in convs:
        fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        expected = 0.02 * math.sqrt(2.0 / (fan_in + fan_out))
        # >= 2,352 weights per conv: the sample std is within 2 % of the draw's (1/sqrt(2n)); 10 % is > 6 sigma
        assert m.weight.std().item() == pytest.approx(expected, rel=0.10)
        assert abs(m.weight.mean().item()) < 0.2 * expected
        assert m.bias is None or not m.bias.any()
    bns = [m for m in r50.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    weights = torch.cat([m.weight.detach() for m in bns])
    assert weights.numel() == 3_072
    assert weights.mean().item() == pytest.approx(1.0, abs=0.002)  # sigma of the mean 0.00036
    assert weights.std().item() == pytest.approx(0.02, rel=0.10)
    assert not torch.cat([m.bias.detach() for m in bns]).any()


def test_unet_r18_channels_scaled_by_a_quarter():
    model = small()
    dec = model.decoder
    assert (dec.reduce[0].in_channels, dec.reduce[0].out_channels) == (512, 128)
    assert [(e[0].in_channels, e[0].out_channels) for e in (dec.embed3, dec.embed2, dec.embed1)] == [
        (256, 128), (128, 64), (64, 16)]
    assert [b.conv.out_channels for b in dec.blocks] == [64, 16, 8, 4]
    assert count(dec) == 568_859 == _unet_formula(512, (64, 128, 256), 128, (64, 16, 8, 4))


def test_unet_training_outputs_tr_blocks_and_stretch():
    x = torch.randn(4, 3, H, W)
    shapes = [(4, 64, 8, 4), (4, 16, 16, 8), (4, 8, 32, 16), (4, 4, 64, 32)]
    for n in (1, 2, 3, 4):
        out = small(num_tr_blocks=n).train()(x)
        assert [tuple(f.shape) for f in out["dec_feats"]] == shapes[:n]
        assert tuple(out["texture"].shape) == (4, 3, H, W)
    # a texture wider than the decoder's grid is the authors' bilinear stretch (align_corners=True, main.py:180)
    stretched = small(texture_size=(H, 2 * W)).eval()
    native = small().eval()
    native.load_state_dict(stretched.state_dict())
    with torch.no_grad():
        ref = F.interpolate(native.predict_texture(x), size=(H, 2 * W), mode="bilinear", align_corners=True)
        torch.testing.assert_close(stretched.predict_texture(x), ref)
    # an input size 16 does not divide still decodes (block outputs resized to the skip's grid)
    assert tuple(small().eval().predict_texture(torch.randn(2, 3, 50, 30)).shape) == (2, 3, H, W)


def test_residual_decoder_tr_blocks_and_default_unchanged():
    model = small(decoder="residual", decoder_widths=(16, 16, 8, 8), num_tr_blocks=4).train()
    assert type(model.decoder) is SADecoder and isinstance(model.decoder.blocks[0], ResidualUpBlock)
    assert len(model(torch.randn(4, 3, H, W))["dec_feats"]) == 4
    assert build_san(4, "resnet18", pretrained=False).decoder_kind == "residual"
    # the old import path keeps working
    from torchreid_dense.models.san_decoder import SADecoder as moved
    assert moved is SADecoder


def test_san_pg_builds_the_same_unet_decoder():
    pg = MODELS.get("san_pg_r18")(0, pretrained=False, texture_size=(H, W), decoder="unet")
    san = MODELS.get("san_r18")(4, pretrained=False, texture_size=(H, W), decoder="unet")
    assert pg.classifier is None and isinstance(pg.decoder, UNetSADecoder)
    assert {k: v.shape for k, v in pg.decoder.state_dict().items()} == {
        k: v.shape for k, v in san.decoder.state_dict().items()}
    assert tuple(pg.train()(torch.randn(2, 3, H, W)).shape) == (2, 3, H, W)


# ----------------------------------------------------------------------------- fc512 head

def test_fc512_head_train_eval_and_inference_module():
    model = small(id_head="fc512")
    assert model.feature_dim == 512 and count(model.embedding) == 512 * 512 + 512 + 2 * 512  # 263,680
    cls = model.classifier
    assert (cls.in_features, cls.out_features) == (512, 4) and not cls.bias.any()
    assert cls.weight.std().item() == pytest.approx(0.01, rel=0.15)  # N(0, 0.01), 2,048 weights
    assert model.embedding.fc.weight.std().item() == pytest.approx(0.01, rel=0.05) and not model.embedding.fc.bias.any()
    x = torch.randn(4, 3, H, W)
    out = model.train()(x)
    assert set(out) == {"logits", "feature", "dec_feats", "texture"}
    v = out["feature"]
    assert v.shape == (4, 512) and (v >= 0).all()  # post-ReLU, as the authors' v
    f = model.encoder(x)
    emb = model.embedding
    h = emb.fc(f)
    ref = torch.relu((h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + emb.bn.eps))
    torch.testing.assert_close(v, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["logits"], F.linear(v, cls.weight, cls.bias))
    model.eval()
    with torch.no_grad():
        v_eval = model(x)
        assert v_eval.shape == (4, 512)
        assert torch.equal(v_eval, model.inference_module()(x))
    assert count(model.inference_module()) == count(model.encoder) + 263_680


def test_fc512_r50_feature_is_512(r50):
    r50.eval()
    with torch.no_grad():
        assert tuple(r50(torch.randn(1, 3, 64, 32)).shape) == (1, 512)


def test_fc512_export_gives_the_512_feature(tmp_path):
    model = small(id_head="fc512")
    path = export_torchscript(model, str(tmp_path / "san_fc512.pt"), H, W)
    assert check_export(model, path, "torchscript", H, W) < 1e-4
    assert exported_signature(path, "torchscript", H, W)["outputs"][0][1][1] == 512


# ----------------------------------------------------------------------------- SAN-PG init without the decoder

def test_load_san_pg_weights_encoder_only(tmp_path):
    torch.manual_seed(1)
    pg = build_san(0, "resnet18", pretrained=False, texture_size=(H, W), reid_head=False, decoder="unet")
    with torch.no_grad():
        for p in pg.parameters():
            p.add_(0.01)
    path = str(tmp_path / "pg.pth")
    torch.save({"state_dict": pg.state_dict()}, path)
    model = small()
    dec_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    report = load_san_pg_weights(model, path, decoder=False, verbose=False)
    assert all(torch.equal(v, pg.encoder.state_dict()[k]) for k, v in model.encoder.state_dict().items())
    assert all(torch.equal(v, dec_before[k]) for k, v in model.decoder.state_dict().items())
    assert not torch.equal(model.decoder.reduce[0].weight, pg.decoder.reduce[0].weight)
    assert report["loaded"] == ["encoder." + k for k in model.encoder.state_dict()]
    assert set(report["ignored"]) == {"decoder." + k for k in pg.decoder.state_dict()}
    assert {k.split(".")[0] for k in report["kept"]} == {"decoder", "classifier"}
    # the default still copies both
    load_san_pg_weights(model, path, verbose=False)
    assert all(torch.equal(v, pg.decoder.state_dict()[k]) for k, v in model.decoder.state_dict().items())
    # a residual-decoder SAN cannot take a unet SAN-PG's decoder, but can take its encoder
    residual = small(decoder="residual")
    with pytest.raises(KeyError, match="san.decoder"):
        load_san_pg_weights(residual, path, verbose=False)
    assert len(load_san_pg_weights(residual, path, decoder=False, verbose=False)["loaded"]) == len(report["loaded"])


# ----------------------------------------------------------------------------- config keys and errors

def _cfg(**san):
    cfg = get_default_config()
    cfg.use_gpu = False
    cfg.model.name, cfg.model.pretrained = "san_r18", False
    cfg.san.texture_size = [H, W]
    for k, v in san.items():
        setattr(cfg.san, k, v)
    return cfg


def test_cfg_kwargs_pass_decoder_id_head_and_tr_blocks():
    assert san_cfg_kwargs(_cfg()) == {"texture_size": (H, W), "id_head": "bnneck"}  # defaults left out
    kwargs = san_cfg_kwargs(_cfg(decoder="unet", id_head="fc512", tr_blocks=4))
    assert kwargs == {"texture_size": (H, W), "id_head": "fc512", "decoder": "unet", "num_tr_blocks": 4}
    model, engine = build_model_from_config(_cfg(decoder="unet", id_head="fc512", tr_blocks=2), 5)
    assert engine == "san" and isinstance(model.decoder, UNetSADecoder)
    assert model.num_tr_blocks == 2 and model.feature_dim == 512 and model.classifier.out_features == 5


@pytest.mark.parametrize("key,value,choices", [
    ("decoder", "unet2", "residual"), ("id_head", "fc2048", "fc512"), ("tr_blocks", 5, "4"), ("tr_blocks", 0, "1"),
])
def test_cfg_unknown_values_name_the_key(key, value, choices):
    with pytest.raises(ValueError, match=rf"san\.{key} '{value}' is not known; set it to one of .*{choices}"):
        san_cfg_kwargs(_cfg(**{key: value}))


def test_model_errors():
    with pytest.raises(KeyError, match="decoder 'unet2'.*residual.*unet"):
        small(decoder="unet2")
    with pytest.raises(ValueError, match="num_tr_blocks"):
        small(num_tr_blocks=5)
    with pytest.raises(ValueError, match="san.decoder_widths"):
        small(decoder_widths=(16, 16, 8, 8))
    with pytest.raises(TypeError, match="unexpected keyword"):
        MODELS.get("san_r18")(4, pretrained=False, decoder_kind="unet")
