"""What every torchreid_dense engine shares (DSA, SAN, SAN-PG and the stock softmax/triplet engines).

:class:`DenseEngineMixin` sits before a torchreid ``Engine`` class in the bases and replaces:

- ``forward_backward``: the engine's :meth:`~DenseEngineMixin.forward_loss` under autocast
  (``amp``: ``'bf16'`` / ``'fp16'``; losses in fp32), a finiteness check that stops with the step,
  the loss components and the last good checkpoint, then backward through a ``GradScaler`` (fp16);
- ``train``: torchreid's loop and progress line, plus mid-epoch checkpoints every
  ``checkpoint_every`` steps, exact mid-epoch resume (the batch sampler skips the batches already
  trained) and a per-step loss log ``<save_dir>/train_losses.jsonl``;
- ``test`` / ``_evaluate``: the plugin's exact evaluator :func:`torchreid_dense.metrics.evaluate_rank`
  reporting R1/R5/R10/R20 (and any ``ranks``), mAP and mINP, after :func:`~torchreid_dense.metrics.rerank_features`
  with ``rerank=True`` (torchreid's re-ranking result in bounded memory); evaluation shards the query and
  gallery sets over the DDP ranks and gathers the features in data-set order;
- ``save_model`` / :meth:`~DenseEngineMixin.resume`: checkpoints of the whole training state
  (:mod:`torchreid_dense.engine.checkpoint`), written atomically by rank 0 only.
"""
import contextlib
import datetime
import json
import os
import os.path as osp
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from .. import compat
from ..metrics import evaluate_rank, rerank_features
from ..utils import distributed as du
from ..utils.io import atomic_torch_save
from . import checkpoint as ckpt

__all__ = [
    "DenseEngineMixin",
    "DenseEngine",
    "NonFiniteLossError",
    "unwrap",
    "AMP_DTYPES",
    "LOSS_LOG",
    "CHECKPOINT_LAST",
    "REPORTED_RANKS",
]

AMP_DTYPES = {"": None, "bf16": torch.bfloat16, "fp16": torch.float16}
LOSS_LOG = "train_losses.jsonl"  # one JSON object per optimisation step (rank 0)
CHECKPOINT_LAST = "checkpoint_last.pth"  # under <save_dir>/model/
REPORTED_RANKS = (1, 5, 10, 20)


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite; training stops before the step is applied."""


def unwrap(model):
    """The model under ``nn.DataParallel`` / ``DistributedDataParallel``."""
    return getattr(model, "module", model)


def _scalar(value):
    """A loss value (tensor or number) as a Python float."""
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


class _NullWriter:
    """Stands in for tensorboard's SummaryWriter on ranks other than 0."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


class DenseEngineMixin:
    """Shared training / evaluation / checkpoint machinery (see the module docstring).

    Engines call :meth:`setup_dense` at the end of ``__init__`` and implement
    :meth:`forward_loss`. Attributes the launcher may set: ``config_yaml`` (stored in
    checkpoints). The class attributes below are the defaults before :meth:`setup_dense`.
    """

    amp = ""
    channels_last = False
    checkpoint_every = 0
    config_yaml = ""
    global_step = 0
    save_dir = ""
    last_checkpoint = None
    last_metrics = None
    _resume_position = None
    scaler = None

    # ------------------------------------------------------------------ set-up
    def setup_dense(self, amp="", channels_last=False, checkpoint_every=0):
        """Mixed precision, memory format and mid-epoch checkpointing.

        Args:
            amp (str): ``''`` (fp32), ``'bf16'`` (autocast, CPU or GPU) or ``'fp16'`` (autocast with a
                GradScaler; GPU only: CPU fp16 kernels are missing for many ops).
            channels_last (bool): model and image batches in channels-last memory format.
            checkpoint_every (int): also write ``<save_dir>/model/checkpoint_last.pth`` every N steps
                (and at every epoch end); 0 = only torchreid's epoch checkpoints.
        """
        if amp not in AMP_DTYPES:
            raise ValueError(f"train.amp must be one of {sorted(AMP_DTYPES)}; got '{amp}'")
        if amp == "fp16" and not self.use_gpu:
            raise ValueError("train.amp 'fp16' needs a CUDA GPU (fp16 autocast and its GradScaler are not supported "
                             "for every op on the CPU); use train.amp 'bf16' on the CPU")
        if int(checkpoint_every) < 0:
            raise ValueError(f"train.checkpoint_every must be >= 0; got {checkpoint_every}")
        self.amp = amp
        self.channels_last = bool(channels_last)
        self.checkpoint_every = int(checkpoint_every)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
        self.global_step = 0
        self.last_metrics = {}
        if self.channels_last and self.model is not None and not isinstance(self.model, torch.nn.parallel.DistributedDataParallel):
            self.model.to(memory_format=torch.channels_last)

    @staticmethod
    def dense_kwargs(cfg):
        """The :meth:`setup_dense` arguments from ``train.amp``, ``train.channels_last``, ``train.checkpoint_every``."""
        return {"amp": cfg.train.amp, "channels_last": cfg.train.channels_last,
                "checkpoint_every": cfg.train.checkpoint_every}

    @property
    def device_type(self):
        return "cuda" if self.use_gpu else "cpu"

    def autocast(self):
        """Autocast context of ``amp`` (a no-op context when off). Wrap the model call only."""
        dtype = AMP_DTYPES[self.amp]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=dtype)

    def to_device(self, *tensors):
        """Tensors to the GPU when training on it; 4-D image batches channels-last when asked."""
        out = []
        for t in tensors:
            if t is not None:
                if self.use_gpu:
                    t = t.cuda(non_blocking=True)
                if self.channels_last and t.dim() == 4 and t.is_floating_point():
                    t = t.contiguous(memory_format=torch.channels_last)
            out.append(t)
        return tuple(out)

    # ------------------------------------------------------------------ one step
    def forward_loss(self, data):
        """One batch's forward pass and loss (engine-specific).

        Returns:
            ``(loss, components, extra)``: the total loss tensor (fp32), a dict of unweighted loss
            components (tensors or floats; logged and printed on a non-finite loss) and a dict of
            other floats to log (e.g. ``acc``).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward_loss(data)")

    def forward_backward(self, data):
        loss, components, extra = self.forward_loss(data)
        self.optimize(loss, components)
        summary = {"loss": _scalar(loss)}
        summary.update({k: _scalar(v) for k, v in components.items()})
        summary.update({k: _scalar(v) for k, v in extra.items()})
        return summary

    def check_finite(self, loss, components, what="training"):
        """Raise :class:`NonFiniteLossError` when ``loss`` is NaN/Inf on any rank (before any update)."""
        finite = torch.isfinite(loss.detach()).all().float()
        if du.is_distributed():
            finite = du.reduce_mean(finite).cpu()  # < 1 when some rank is not finite
        if float(finite) >= 1.0:
            return
        parts = ", ".join(f"{k}={_scalar(v):.6g}" for k, v in components.items()) or "-"
        last = self.last_checkpoint or "none written yet (set train.checkpoint_every N to save mid-epoch)"
        raise NonFiniteLossError(
            f"non-finite {what} loss {float(loss.detach()):.6g} at epoch {self.epoch + 1}, step "
            f"{getattr(self, 'batch_idx', 0) + 1} of the epoch (global step {self.global_step + 1}); loss components: "
            f"{parts}. The step was not applied. Last good checkpoint (kept intact): {last}. Lower train.lr, "
            "check the data of this batch, or use train.amp '' if mixed precision overflows; resume with "
            "model.resume <checkpoint>"
        )

    def optimize(self, loss, components, optimizer=None):
        """Check ``loss``, then zero_grad / backward / step (through the GradScaler under fp16)."""
        optimizer = optimizer or self.optimizer
        self.check_finite(loss, components)
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None and self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            optimizer.step()

    # ------------------------------------------------------------------ training loop
    def run(self, save_dir="log", **kwargs):
        """torchreid's ``Engine.run``; remembers ``save_dir`` and keeps tensorboard on rank 0."""
        self.save_dir = save_dir
        if not du.is_main_process():
            self.writer = _NullWriter()
        return super().run(save_dir=save_dir, **kwargs)

    def _epoch_iterator(self):
        """Select the epoch in the batch sampler, skip the batches a resumed run already trained."""
        batch_sampler = getattr(self.train_loader, "batch_sampler", None)
        resumable = hasattr(batch_sampler, "set_start_batch")
        if hasattr(batch_sampler, "set_epoch"):
            batch_sampler.set_epoch(self.epoch)
        elif hasattr(getattr(self.train_loader, "sampler", None), "set_epoch"):
            self.train_loader.sampler.set_epoch(self.epoch)
        start = 0
        position = self._resume_position
        if position is not None and position["epoch"] == self.epoch:
            start = position["batch"]
            self._resume_position = None
            if start and not resumable:
                raise RuntimeError(
                    "resuming mid-epoch needs the launcher's resumable train loader (sampler.train_sampler one of "
                    "RandomIdentitySampler, RandomSampler, SequentialSampler)")
            if start:
                batch_sampler.set_start_batch(start)
        num_batches = batch_sampler.num_batches if resumable else len(self.train_loader)
        return start, num_batches

    def train(self, print_freq=10, fixbase_epoch=0, open_layers=None):
        """One epoch: torchreid's loop and progress line, plus mid-epoch checkpoints and the step log."""
        losses = compat.utils.MetricMeter()
        batch_time = compat.utils.AverageMeter()
        data_time = compat.utils.AverageMeter()
        self.set_model_mode("train")
        self.two_stepped_transfer_learning(self.epoch, fixbase_epoch, open_layers)
        start, self.num_batches = self._epoch_iterator()
        end = time.time()
        for self.batch_idx, data in enumerate(self.train_loader, start):
            data_time.update(time.time() - end)
            summary = self.forward_backward(data)
            batch_time.update(time.time() - end)
            losses.update(summary)
            self.global_step += 1
            self._log_step(summary)
            if (self.batch_idx + 1) % print_freq == 0:
                left = (self.num_batches - self.batch_idx - 1) + (self.max_epoch - self.epoch - 1) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * left)))
                print(
                    f"epoch: [{self.epoch + 1}/{self.max_epoch}][{self.batch_idx + 1}/{self.num_batches}]\t"
                    f"time {batch_time.val:.3f} ({batch_time.avg:.3f})\t"
                    f"data {data_time.val:.3f} ({data_time.avg:.3f})\t"
                    f"eta {eta}\t{losses}\tlr {self.get_current_lr():.6f}"
                )
            if self.writer is not None:
                n_iter = self.epoch * self.num_batches + self.batch_idx
                self.writer.add_scalar("Train/time", batch_time.avg, n_iter)
                self.writer.add_scalar("Train/data", data_time.avg, n_iter)
                for name, meter in losses.meters.items():
                    self.writer.add_scalar("Train/" + name, meter.avg, n_iter)
                self.writer.add_scalar("Train/lr", self.get_current_lr(), n_iter)
            if (self.checkpoint_every and self.global_step % self.checkpoint_every == 0
                    and self.batch_idx + 1 < self.num_batches):
                self.save_checkpoint(self._last_path(), epoch=self.epoch, batch=self.batch_idx + 1)
            end = time.time()
        self.update_lr()
        if self.checkpoint_every:
            self.save_checkpoint(self._last_path(), epoch=self.epoch + 1, batch=0)

    def _log_step(self, summary):
        if not (self.save_dir and du.is_main_process()):
            return
        record = {"step": self.global_step, "epoch": self.epoch, "batch": self.batch_idx}
        record.update(summary)
        os.makedirs(self.save_dir, exist_ok=True)
        with open(osp.join(self.save_dir, LOSS_LOG), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _truncate_step_log(self, save_dir, global_step):
        """Drop logged steps after ``global_step`` (they are redone after a resume)."""
        path = osp.join(save_dir, LOSS_LOG)
        if not (du.is_main_process() and osp.isfile(path)):
            return
        with open(path, encoding="utf-8") as f:
            keep = [line for line in f if line.strip() and json.loads(line)["step"] <= global_step]
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(keep)

    # ------------------------------------------------------------------ checkpoints
    def _last_path(self):
        return osp.join(self.save_dir or ".", "model", CHECKPOINT_LAST)

    def extra_state(self):
        """Engine-specific counters stored in checkpoints (numbers / strings / tensors)."""
        return {}

    def load_extra_state(self, state):
        """Restore what :meth:`extra_state` returned."""

    def checkpoint_state(self, epoch, batch, rank1=0.0):
        """The checkpoint dict (see :mod:`torchreid_dense.engine.checkpoint` for the keys)."""
        names = self.get_model_names()
        first = names[0]

        def entry(name):
            optim, sched = self._optims.get(name), self._scheds.get(name)
            return {"state_dict": unwrap(self._models[name]).state_dict(),
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None}

        state = entry(first)
        batch_sampler = getattr(self.train_loader, "batch_sampler", None)
        state.update({
            "epoch": int(epoch),
            "batch": int(batch),
            "global_step": int(self.global_step),
            "rank1": float(rank1),
            "models": {name: entry(name) for name in names[1:]},
            "grad_scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "sampler": batch_sampler.state_dict(batch) if hasattr(batch_sampler, "state_dict") else {},
            "rng": ckpt.rng_state(),
            "engine": self.extra_state(),
            "config": self.config_yaml,
        })
        return state

    def save_checkpoint(self, path, epoch, batch, rank1=0.0):
        """Write the checkpoint atomically (rank 0 only); it becomes the last good checkpoint."""
        if du.is_main_process():
            atomic_torch_save(self.checkpoint_state(epoch, batch, rank1), path)
            self.last_checkpoint = path
        du.barrier()

    def save_model(self, epoch, rank1, save_dir, is_best=False):
        """torchreid's ``<save_dir>/model/model.pth.tar-<epoch+1>``, holding the whole training state."""
        path = osp.join(save_dir, "model", f"model.pth.tar-{epoch + 1}")
        self.save_checkpoint(path, epoch=epoch + 1, batch=0, rank1=rank1)
        if du.is_main_process():
            print(f'Checkpoint saved to "{path}"')

    def resume(self, path):
        """Restore model(s), optimiser(s), scheduler(s), grad scaler, RNG states, engine counters and the
        sampler position from ``path``; returns the epoch to start at (``Engine.run(start_epoch=...)``).

        Training then continues with the batch after the last one the checkpoint had trained.
        """
        state = ckpt.read_checkpoint(path)
        names = self.get_model_names()
        entries = {names[0]: state, **state.get("models", {})}
        for name in names:
            if name not in entries:
                raise ckpt.CheckpointMismatchError(f"checkpoint '{path}' has no state for model '{name}'")
            entry = entries[name]
            ckpt.load_model_state(self._models[name], ckpt.model_state_of(entry), path)
            if self._optims.get(name) is not None and entry.get("optimizer") is not None:
                self._optims[name].load_state_dict(entry["optimizer"])
            if self._scheds.get(name) is not None and entry.get("scheduler") is not None:
                self._scheds[name].load_state_dict(entry["scheduler"])
        if self.scaler is not None and state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])
        if "rng" in state:
            ckpt.set_rng_state(state["rng"])
        self.load_extra_state(state.get("engine", {}))
        epoch, batch = int(state.get("epoch", 0)), int(state.get("batch", 0))
        self.global_step = int(state.get("global_step", 0))
        self._resume_position = {"epoch": epoch, "batch": batch}
        self.last_checkpoint = path
        print(f"=> Resumed from '{path}': epoch {epoch + 1}, batch {batch + 1} (global step {self.global_step})")
        return epoch

    # ------------------------------------------------------------------ evaluation
    def test(self, dist_metric="euclidean", normalize_feature=False, visrank=False, visrank_topk=10, save_dir="",
             use_metric_cuhk03=False, ranks=REPORTED_RANKS, rerank=False):
        """Evaluate every target; ``last_metrics[target]`` holds the metrics; returns the last target's rank-1."""
        self.set_model_mode("eval")
        rank1 = 0.0
        self.last_metrics = {}
        for name in self.test_loader:
            domain = "source" if name in self.datamanager.sources else "target"
            print(f"##### Evaluating {name} ({domain}) #####")
            result = self._evaluate(
                dataset_name=name, query_loader=self.test_loader[name]["query"],
                gallery_loader=self.test_loader[name]["gallery"], dist_metric=dist_metric,
                normalize_feature=normalize_feature, visrank=visrank, visrank_topk=visrank_topk,
                save_dir=save_dir, use_metric_cuhk03=use_metric_cuhk03, ranks=ranks, rerank=rerank)
            self.last_metrics[name] = result
            if self.writer is not None:
                for key in ("rank1", "mAP", "mINP"):
                    self.writer.add_scalar(f"Test/{name}/{key}", result[key], self.epoch)
            rank1 = result["rank1"]
        return rank1

    def _shard(self, loader):
        """This rank's part of an evaluation loader (every item exactly once over the ranks)."""
        world, rank = du.get_world_size(), du.get_rank()
        if world == 1:
            return loader, None, None
        n = len(loader.dataset)
        indices = du.shard_indices(n, rank, world)
        shard = DataLoader(Subset(loader.dataset, indices), batch_size=loader.batch_size, shuffle=False,
                           num_workers=loader.num_workers, pin_memory=loader.pin_memory, drop_last=False)
        return shard, indices, n

    @torch.no_grad()
    def extract_set(self, loader):
        """Features ``[N, D]`` (fp32, CPU), pids and camids of an evaluation loader, in data-set order,
        extracted by all ranks together."""
        shard, indices, n = self._shard(loader)
        feats, pids, camids = [], [], []
        for data in shard:
            imgs, pid, camid = self.parse_data_for_eval(data)
            (imgs,) = self.to_device(imgs)
            with self.autocast():
                out = self.extract_features(imgs)
            feats.append(out.float().cpu())
            pids.append(torch.as_tensor(pid).long().reshape(-1))
            camids.append(torch.as_tensor(camid).long().reshape(-1))
        feats, pids, camids = torch.cat(feats), torch.cat(pids), torch.cat(camids)
        if du.is_distributed():
            dev = torch.device("cuda", torch.cuda.current_device()) if self.use_gpu else torch.device("cpu")
            feats, pids, camids = (du.gather_in_order(t.to(dev), indices, n).cpu() for t in (feats, pids, camids))
        return feats, pids, camids

    def extract_features(self, input):
        """The eval-mode feature of the bare model (never through DDP: ranks run different batch counts)."""
        return unwrap(self.model)(input)

    @torch.no_grad()
    def _evaluate(self, dataset_name="", query_loader=None, gallery_loader=None, dist_metric="euclidean",
                  normalize_feature=False, visrank=False, visrank_topk=10, save_dir="", use_metric_cuhk03=False,
                  ranks=REPORTED_RANKS, rerank=False):
        """torchreid's evaluation protocol through the plugin's exact evaluator.

        Returns:
            dict: ``rank<r>`` for r in 1, 5, 10, 20 and every r of ``ranks``, ``mAP`` and ``mINP``
            (Python floats in [0, 1]).
        """
        start = time.time()
        print("Extracting features from query set ...")
        qf, q_pids, q_camids = self.extract_set(query_loader)
        print(f"Done, obtained {qf.size(0)}-by-{qf.size(1)} matrix")
        print("Extracting features from gallery set ...")
        gf, g_pids, g_camids = self.extract_set(gallery_loader)
        print(f"Done, obtained {gf.size(0)}-by-{gf.size(1)} matrix")
        print(f"Feature extraction: {time.time() - start:.1f} s")
        if normalize_feature:
            print("Normalizing features with L2 norm ...")
            qf, gf = F.normalize(qf, p=2, dim=1), F.normalize(gf, p=2, dim=1)
        print(f"Computing distance matrix with metric={dist_metric} ...")
        if rerank:
            # torchreid's re_ranking result (k1=20, k2=6, lambda=0.3) without its dense (q+g)^2 matrices
            print("Applying person re-ranking ...")
            device = torch.device("cuda", torch.cuda.current_device()) if self.use_gpu else torch.device("cpu")
            distmat = rerank_features(qf, gf, metric=dist_metric, device=device).cpu()
        else:
            distmat = compat.metrics.compute_distance_matrix(qf, gf, dist_metric)
        print("Computing CMC, mAP and mINP ...")
        wanted = sorted(set(REPORTED_RANKS) | {int(r) for r in ranks})
        cmc, mAP, mINP = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max(50, wanted[-1]),
                                       use_metric_cuhk03=use_metric_cuhk03, return_minp=True)
        result = {f"rank{r}": float(cmc[min(r, len(cmc)) - 1]) for r in wanted}
        result.update(mAP=float(mAP), mINP=float(mINP))
        print("** Results **")
        print(f"mAP: {mAP:.1%}")
        print(f"mINP: {mINP:.1%}")
        print("CMC curve")
        for r in ranks:
            print(f"Rank-{r:<3}: {result[f'rank{r}']:.1%}")
        if visrank and du.is_main_process():
            compat.utils.visualize_ranked_results(
                distmat.numpy(), self.datamanager.fetch_test_loaders(dataset_name), self.datamanager.data_type,
                width=self.datamanager.width, height=self.datamanager.height,
                save_dir=osp.join(save_dir, "visrank_" + dataset_name), topk=visrank_topk)
        return result


class DenseEngine(DenseEngineMixin, compat.Engine):
    """A torchreid ``Engine`` with the plugin's shared machinery (base of the DSA and SAN engines)."""
