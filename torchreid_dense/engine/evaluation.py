"""Re-ID evaluation of an engine: torchreid's protocol through the plugin's exact evaluator.

:class:`EvaluationMixin` replaces torchreid's ``test`` / ``_evaluate``: the features of the query and
gallery sets (:meth:`~EvaluationMixin.eval_features` of each batch, sharded over the DDP ranks and
gathered in data-set order), optionally re-ranked by :func:`~torchreid_dense.metrics.rerank_features`
(torchreid's re-ranking result in bounded memory), then :func:`torchreid_dense.metrics.evaluate_rank`
reporting R1/R5/R10/R20 (and any ``ranks``), mAP and mINP.
"""
import os.path as osp
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from .. import compat
from ..metrics import evaluate_rank, rerank_features
from ..utils import distributed as du
from ..utils.device import unwrap

__all__ = ["REPORTED_RANKS", "EvaluationMixin", "evaluator_note"]

REPORTED_RANKS = (1, 5, 10, 20)
# torchreid's compiled evaluator (deep-person-reid 1.4.0 from source) against the plugin's on Market-1501-sized
# problems (3,368 x 15,913): identical CMC, mAP within 4e-7, 10-26x the plugin's time (2 busy cores, 1 or 2 threads)
CYTHON_SLOWER = "10-26x"


def evaluator_note():
    """Which evaluator computes CMC / mAP / mINP and why (one clause of the evaluation log)."""
    if compat.cython_evaluator_available():
        return (f"the plugin's evaluator; torchreid's compiled Cython evaluator is installed but not used: same CMC and "
                f"mAP, plus mINP, and {CYTHON_SLOWER} slower at Market-1501 size (benchmarks/bench_eval.py)")
    return "the plugin's evaluator, torchreid's protocol"


class EvaluationMixin:
    """Evaluation of a torchreid engine; ``last_metrics[target]`` holds the metrics of the last :meth:`test`.

    Reads ``test_loader``, ``datamanager``, ``writer``, ``epoch``, ``use_gpu`` and the engine's
    ``autocast`` / ``to_device``.
    """

    last_metrics = None

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

    def _eval_device(self):
        return torch.device("cuda", torch.cuda.current_device()) if self.use_gpu else torch.device("cpu")

    @torch.no_grad()
    def extract_set(self, loader):
        """Features ``[N, D]`` (fp32, CPU), pids and camids of an evaluation loader, in data-set order,
        extracted by all ranks together."""
        shard, indices, n = self._shard(loader)
        feats, pids, camids = [], [], []
        for data in shard:
            _, pid, camid = self.parse_data_for_eval(data)
            with self.autocast():
                out = self.eval_features(data)
            feats.append(out.float().cpu())
            pids.append(torch.as_tensor(pid).long().reshape(-1))
            camids.append(torch.as_tensor(camid).long().reshape(-1))
        feats, pids, camids = torch.cat(feats), torch.cat(pids), torch.cat(camids)
        if du.is_distributed():
            dev = self._eval_device()
            feats, pids, camids = (du.gather_in_order(t.to(dev), indices, n).cpu() for t in (feats, pids, camids))
        return feats, pids, camids

    def eval_features(self, data):
        """The features of one evaluation batch (called under autocast): :meth:`extract_features` of its images.

        Engines whose feature needs more of the batch than its images override this.
        """
        imgs = self.parse_data_for_eval(data)[0]
        (imgs,) = self.to_device(imgs)
        return self.extract_features(imgs)

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
            distmat = rerank_features(qf, gf, metric=dist_metric, device=self._eval_device()).cpu()
        else:
            distmat = compat.metrics.compute_distance_matrix(qf, gf, dist_metric)
        print(f"Computing CMC, mAP and mINP ... ({evaluator_note()})")
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
