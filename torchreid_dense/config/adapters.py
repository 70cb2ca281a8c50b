"""``*_kwargs(cfg)`` adapters: the config as plain keyword arguments, so library code never reads the config
object (engines read their own keys in ``from_config`` only)."""

__all__ = ["imagedata_kwargs", "optimizer_kwargs", "lr_scheduler_kwargs", "engine_run_kwargs", "model_kwargs"]


def imagedata_kwargs(cfg):
    """Keyword arguments of ``DenseImageDataManager``: torchreid's ``ImageDataManager`` ones + ``dense`` and
    ``file_check``."""
    return {
        "root": cfg.data.root,
        "sources": list(cfg.data.sources),
        "targets": list(cfg.data.targets),
        "height": cfg.data.height,
        "width": cfg.data.width,
        "transforms": list(cfg.data.transforms),
        "k_tfm": cfg.data.k_tfm,
        "norm_mean": list(cfg.data.norm_mean),
        "norm_std": list(cfg.data.norm_std),
        "use_gpu": cfg.use_gpu,
        "split_id": cfg.data.split_id,
        "combineall": cfg.data.combineall,
        "load_train_targets": cfg.data.load_train_targets,
        "batch_size_train": cfg.train.batch_size,
        "batch_size_test": cfg.test.batch_size,
        "workers": cfg.data.workers,
        "num_instances": cfg.sampler.num_instances,
        "num_cams": cfg.sampler.num_cams,
        "num_datasets": cfg.sampler.num_datasets,
        "train_sampler": cfg.sampler.train_sampler,
        "train_sampler_t": cfg.sampler.train_sampler_t,
        "cuhk03_labeled": cfg.cuhk03.labeled_images,
        "cuhk03_classic_split": cfg.cuhk03.classic_split,
        "market1501_500k": cfg.market1501.use_500k_distractors,
        "file_check": {"skip_bad": cfg.data.skip_bad, "cache_dir": cfg.data.check_cache} if cfg.data.check_files
        else False,
        "dense": {
            "size": cfg.dense.dsap_size,
            "alignment": cfg.dense.alignment,
            "iuv_kind": cfg.dense.iuv_kind,
            "strict": cfg.dense.strict,
            "cache": cfg.dense.cache,
            "sidecar_root": cfg.dense.sidecar_root,
            "max_missing": cfg.dense.max_missing,  # read by the data manager, not by the wrappers
            "texture_size": tuple(cfg.san.texture_size),  # the texture wrappers' target = the SA-Dec output
            "texture_range": cfg.san.texture_range,  # the texture wrappers' target range ('normalized' or 'tanh')
        },
    }


def optimizer_kwargs(cfg):
    """Keyword arguments of ``torchreid_dense.optim.build_optimizer`` (torchreid's)."""
    return {
        "optim": cfg.train.optim,
        "lr": cfg.train.lr,
        "weight_decay": cfg.train.weight_decay,
        "momentum": cfg.sgd.momentum,
        "sgd_dampening": cfg.sgd.dampening,
        "sgd_nesterov": cfg.sgd.nesterov,
        "rmsprop_alpha": cfg.rmsprop.alpha,
        "adam_beta1": cfg.adam.beta1,
        "adam_beta2": cfg.adam.beta2,
        "staged_lr": cfg.train.staged_lr,
        "new_layers": list(cfg.train.new_layers),
        "base_lr_mult": cfg.train.base_lr_mult,
    }


def lr_scheduler_kwargs(cfg):
    """Keyword arguments of ``torchreid_dense.optim.build_lr_scheduler``."""
    return {
        "lr_scheduler": cfg.train.lr_scheduler,
        "stepsize": list(cfg.train.stepsize),
        "gamma": cfg.train.gamma,
        "max_epoch": cfg.train.max_epoch,
        "warmup_epochs": cfg.train.warmup_epochs,
        "warmup_lr": cfg.train.warmup_lr,
        "warmup_mode": cfg.train.warmup_mode,
    }


def engine_run_kwargs(cfg):
    """Keyword arguments of torchreid's ``Engine.run``."""
    return {
        "save_dir": cfg.data.save_dir,
        "max_epoch": cfg.train.max_epoch,
        "start_epoch": cfg.train.start_epoch,
        "fixbase_epoch": cfg.train.fixbase_epoch,
        "open_layers": list(cfg.train.open_layers),
        "start_eval": cfg.test.start_eval,
        "eval_freq": cfg.test.eval_freq,
        "test_only": cfg.test.evaluate,
        "print_freq": cfg.train.print_freq,
        "dist_metric": cfg.test.dist_metric,
        "normalize_feature": cfg.test.normalize_feature,
        "visrank": cfg.test.visrank,
        "visrank_topk": cfg.test.visrank_topk,
        "use_metric_cuhk03": cfg.cuhk03.use_metric_cuhk03,
        "ranks": list(cfg.test.ranks),
        "rerank": cfg.test.rerank,
    }


def model_kwargs(cfg):
    """Keyword arguments of a model builder (torchreid's signature) apart from ``num_classes``."""
    return {
        "name": cfg.model.name,
        "loss": cfg.loss.name,
        "pretrained": cfg.model.pretrained_path or cfg.model.pretrained,  # a path: that file, no download
        "use_gpu": cfg.use_gpu,
    }
