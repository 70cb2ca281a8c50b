"""SAN's texture terms as a second optimisation step (the SAN authors' released code, issue 26): ID + triplet with
the main optimiser, then L_Rec + L_TR at the updated weights with their own Adam, checked against a hand-made
update parameter by parameter."""
import copy

import pytest
import torch

from torchreid_dense.engine.san import SANEngine, build_texture_optimizer
from torchreid_dense.losses import SANLoss

from test_san import _reid_batch, _stub_datamanager, small_san

# Adam's eps raised from 1e-8 so that its update is a smooth function of the gradient: near-zero gradients would
# otherwise turn last-bit differences between the engine's and this file's arithmetic into +-lr steps
SGD_LR, ADAM_LR, BETAS, EPS = 1e-3, 1e-2, (0.5, 0.999), 1e-3


def _two_step_engine(model, batch):
    optimizer = torch.optim.SGD(model.parameters(), lr=SGD_LR)
    texture_optimizer = build_texture_optimizer(model, "adam", ADAM_LR, BETAS, 0.0)
    texture_optimizer.param_groups[0]["eps"] = EPS
    return SANEngine(_stub_datamanager(batch, 4), model, optimizer, use_gpu=False,
                     texture_optimizer=texture_optimizer, generator=torch.Generator().manual_seed(0))


class _HandAdam:
    """Adam written out (Kingma & Ba, Algorithm 1) for the texture step's parameters."""

    def __init__(self):
        self.m, self.v, self.t = {}, {}, 0

    def step(self, named_grads, params):
        self.t += 1
        b1, b2 = BETAS
        with torch.no_grad():
            for name, g in named_grads.items():
                self.m[name] = b1 * self.m.get(name, torch.zeros_like(g)) + (1 - b1) * g
                self.v[name] = b2 * self.v.get(name, torch.zeros_like(g)) + (1 - b2) * g * g
                m_hat = self.m[name] / (1 - b1 ** self.t)
                v_hat = self.v[name] / (1 - b2 ** self.t)
                params[name] -= ADAM_LR * m_hat / (v_hat.sqrt() + EPS)


def _grads(loss, params, names):
    grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
    return {n: g for n, g in zip(names, grads) if g is not None}


def test_two_step_update_equals_a_hand_made_sgd_then_adam_update_twice():
    batch = _reid_batch()
    torch.manual_seed(0)
    model = small_san(4)
    ref = copy.deepcopy(model).train()
    engine = _two_step_engine(model, batch)
    summaries = [engine.forward_backward(batch) for _ in range(2)]

    params = {n: p for n, p in ref.named_parameters() if p.requires_grad}  # (BNNeck's BN bias is frozen)
    names = list(params)
    texture_names = [n for n in names if n.startswith(("encoder.", "decoder."))]
    reid_loss = SANLoss(4, weight_rec=0.0, weight_tr=0.0)
    generator = torch.Generator().manual_seed(0)  # the engine's L_TR draws, in the same order
    texture_loss = SANLoss(4, weight_id=0.0, weight_triplet=0.0, generator=generator)
    adam = _HandAdam()
    for summary in summaries:
        # step 1: ID + triplet on a forward without SA-Dec, plain SGD
        loss_a, parts_a = reid_loss(ref(batch["img"], with_texture=False), batch["pid"])
        grads_a = _grads(loss_a, params, names)
        assert not any(n.startswith("decoder.") for n in grads_a)  # SA-Dec takes no part in step 1
        with torch.no_grad():
            for n, g in grads_a.items():
                params[n].add_(g, alpha=-SGD_LR)
        # step 2: a new forward at the updated weights, L_Rec + L_TR, Adam over SA-Enc and SA-Dec
        loss_b, parts_b = texture_loss(ref(batch["img"]), batch["pid"], batch["texture"], batch["texture_valid"])
        grads_b = _grads(loss_b, params, texture_names)
        assert set(grads_b) == set(texture_names)
        adam.step(grads_b, params)
        assert summary["loss"] == pytest.approx(float((loss_a + loss_b).detach()), rel=2e-5)
        assert summary["loss_rec"] == pytest.approx(float(parts_b["loss_rec"]), rel=2e-5)
        assert summary["loss_tr"] == pytest.approx(float(parts_b["loss_tr"]), rel=2e-5)
        assert summary["loss_id"] == pytest.approx(float(parts_a["loss_id"]), rel=2e-5)

    got = {n: p for n, p in model.named_parameters() if p.requires_grad}
    moved = 0
    for n in names:
        # the steps move parameters by ~1e-2 (Adam) and ~1e-3 (SGD): 2e-6 checks each update to 0.02%
        torch.testing.assert_close(got[n].detach(), params[n].detach(), rtol=1e-4, atol=2e-6, msg=lambda m: f"{n}: {m}")
        moved += not torch.equal(got[n].detach(), small_san_initial(n))
    assert moved == len(names)  # every parameter took part in one of the two steps
    assert engine.texture_optimizer.state_dict()["state"][0]["step"].item() == 2


_INITIAL = {}


def small_san_initial(name):
    """The parameter ``name`` of ``small_san(4)`` as built under ``torch.manual_seed(0)``."""
    if not _INITIAL:
        torch.manual_seed(0)
        _INITIAL.update({n: p.detach().clone() for n, p in small_san(4).named_parameters()})
    return _INITIAL[name]


def test_texture_optimiser_state_is_checkpointed_and_restored():
    batch = _reid_batch()
    torch.manual_seed(0)
    model = small_san(4)
    engine = _two_step_engine(model, batch)
    engine.forward_backward(batch)
    state = engine.extra_state()
    assert state["texture_optimizer"]["param_groups"][0]["betas"] == BETAS
    other = _two_step_engine(copy.deepcopy(model), batch)
    other.load_extra_state(state)
    a, b = engine.texture_optimizer.state_dict(), other.texture_optimizer.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for key, values in a["state"].items():
        for name, value in values.items():
            assert torch.equal(value, b["state"][key][name]), (key, name)
    single = SANEngine(_stub_datamanager(batch, 4), copy.deepcopy(model), torch.optim.SGD(model.parameters(), lr=0.1),
                       use_gpu=False)
    assert "texture_optimizer" not in single.extra_state()
    with pytest.raises(ValueError, match="without san.texture_step"):
        other.load_extra_state(single.extra_state())


def test_texture_optimiser_covers_encoder_and_decoder_only_and_checks_its_settings():
    model = small_san(4)
    optimizer = build_texture_optimizer(model)
    covered = {id(p) for group in optimizer.param_groups for p in group["params"]}
    expected = {id(p) for m in (model.encoder, model.decoder) for p in m.parameters()}
    assert covered == expected and not covered & {id(p) for p in model.classifier.parameters()}
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"], group["amsgrad"]) == (1e-5, (0.5, 0.999), 0.0, False)
    assert build_texture_optimizer(model, "amsgrad").param_groups[0]["amsgrad"]
    with pytest.raises(ValueError, match="san.texture_optim must be one of"):
        build_texture_optimizer(model, "sgd")
    with pytest.raises(ValueError, match="needs L_Rec or L_TR"):
        SANEngine(_stub_datamanager(_reid_batch(), 4), model, torch.optim.SGD(model.parameters(), lr=0.1),
                  use_gpu=False, texture_optimizer=optimizer, weight_rec=0.0, weight_tr=0.0)


@pytest.mark.parametrize("config", ["configs/san_authors_cuhk03_labeled.yaml", "configs/san_authors_market.yaml"])
def test_the_authors_recipe_configs_build_their_model_engine_and_schedule(config, monkeypatch):
    """Each authors'-recipe config builds the U-Net SA-Dec, the fc512 head, 4 L_TR blocks with the fixed pairing,
    the two optimisers and the exponential warm-up (pretrained weights off: no download in tests)."""
    import os.path as osp

    from torchreid_dense.config import lr_scheduler_kwargs, optimizer_kwargs
    from torchreid_dense.engine.launch import load_config
    from torchreid_dense.models import build_model_from_config
    from torchreid_dense.optim import build_lr_scheduler, build_optimizer

    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg = load_config(osp.join(repo, config), ["model.pretrained", "False", "use_gpu", "False"])
    model, engine_name = build_model_from_config(cfg, 8)
    assert engine_name == "san" and type(model.decoder).__name__ == "UNetSADecoder"
    assert sum(p.numel() for p in model.decoder.parameters()) == 9_071_075
    optimizer = build_optimizer(model, **optimizer_kwargs(cfg))
    scheduler = build_lr_scheduler(optimizer, **lr_scheduler_kwargs(cfg))
    batch = _reid_batch(n_ids=2, per_id=4)
    batch = dict(batch, img=torch.randn(8, 3, 64, 32), texture=torch.zeros(8, 3, 256, 256),
                 texture_valid=torch.ones(8, 1, 256, 256, dtype=torch.bool))
    engine = SANEngine.from_config(cfg, _stub_datamanager(batch, 8), model, optimizer, scheduler)
    assert engine.pit_loader is None and engine.texture_optimizer.param_groups[0]["lr"] == 1e-5
    assert (engine.texture_criterion.weight_rec, engine.texture_criterion.weight_tr) == (1.0, 1.0)
    assert (engine.criterion.weight_id, engine.criterion.weight_triplet) == (1.0, 1.0)
    summary = engine.forward_backward(batch)
    assert {"loss_id", "loss_triplet", "loss_rec", "loss_tr"} <= set(summary)
    model.eval()
    with torch.no_grad():
        assert tuple(model(batch["img"]).shape) == (8, 512)  # the fc512 test feature
    lrs = [g["lr"] for g in optimizer.param_groups]
    assert lrs[0] == pytest.approx(8e-6)
    assert optimizer.param_groups[0]["amsgrad"]


def test_a_texture_step_run_resumes_exactly_from_its_epoch_checkpoint(tmp_path):
    """The authors' recipe (texture step, U-Net, fc512, offsets pairing, tanh textures, exponential warm-up) at tiny
    size: resumed from its epoch-1 checkpoint, epoch 2 repeats the straight run's losses and ends on its weights and
    texture-optimiser state."""
    import json
    import os.path as osp

    from torchreid_dense.engine.launch import main

    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    root = str(tmp_path / "data")

    def run(save_dir, *extra):
        main(["--config-file", osp.join(repo, "configs", "san_authors_market.yaml"), "model.name", "san_r18",
              "model.pretrained", "False", "use_gpu", "False", "data.root", root,
              "data.sources", "['synthreid_tiny_texture']", "data.targets", "['synthreid_tiny']",
              "synth.preset", "tiny", "data.height", "32", "data.width", "16", "data.workers", "0",
              "san.texture_size", "[32, 32]", "san.pg_max_epoch", "0", "train.batch_size", "16",
              "train.max_epoch", "2", "train.warmup_epochs", "1", "train.stepsize", "[1]", "test.eval_freq", "1",
              "test.batch_size", "64", "train.print_freq", "100", "data.save_dir", save_dir, *extra])
        with open(osp.join(save_dir, "train_losses.jsonl"), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    straight_dir, resumed_dir = str(tmp_path / "straight"), str(tmp_path / "resumed")
    straight = run(straight_dir)  # evaluates and writes its whole state after each epoch (test.eval_freq 1)
    resumed = run(resumed_dir, "model.resume", osp.join(straight_dir, "model", "model.pth.tar-1"))
    second = [r for r in straight if r["epoch"] == 1]
    assert second and "loss_tr" in second[0] and "loss_rec" in second[0]
    assert resumed == second  # every step of epoch 2, every loss, to the last bit
    final = {name: torch.load(osp.join(d, "model", "model.pth.tar-2"), weights_only=True)
             for name, d in (("straight", straight_dir), ("resumed", resumed_dir))}
    for key, value in final["straight"]["state_dict"].items():
        assert torch.equal(final["resumed"]["state_dict"][key], value), key
    texture_state = {n: final[n]["engine"]["texture_optimizer"]["state"] for n in final}
    assert texture_state["straight"].keys() == texture_state["resumed"].keys()
    for index, values in texture_state["straight"].items():
        assert all(torch.equal(values[k], texture_state["resumed"][index][k]) for k in values)
