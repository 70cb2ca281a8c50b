"""deep-person-reid's configuration keys: every key of its ``scripts/default_config.py``, same name, default and
meaning (that script is not installed with the package, so the plugin owns a copy)."""
import torch
from yacs.config import CfgNode

__all__ = ["add_torchreid_config"]


def add_torchreid_config(cfg):
    """deep-person-reid's sections (``model``, ``data``, ``train``, ``test``, ...) and its top-level ``use_gpu``."""
    cfg.use_gpu = torch.cuda.is_available()  # use the GPU when there is one (False = everything on CPU)

    # model
    cfg.model = CfgNode()
    cfg.model.name = "resnet50"  # model name in torchreid's factory (stock or plugin, e.g. dsa_reid, san)
    cfg.model.pretrained = True  # automatically load pretrained model weights if available
    cfg.model.pretrained_path = ""  # local copy of the ImageNet weights file (no download; '' = torch hub's); wins over model.pretrained
    cfg.model.load_weights = ""  # path to model weights
    cfg.model.resume = ""  # path to checkpoint for resume training

    # data
    cfg.data = CfgNode()
    cfg.data.type = "image"  # data type: 'image' (the plugin's data sets are image data sets)
    cfg.data.root = "reid-data"  # root directory holding the data sets
    cfg.data.sources = ["market1501"]  # source (training) data sets
    cfg.data.targets = ["market1501"]  # target (test) data sets
    cfg.data.workers = 4  # number of data loading workers
    cfg.data.split_id = 0  # split index
    cfg.data.height = 256  # image height
    cfg.data.width = 128  # image width
    cfg.data.combineall = False  # combine train, query and gallery for training
    cfg.data.transforms = ["random_flip"]  # data augmentation
    cfg.data.k_tfm = 1  # number of times to apply augmentation to an image independently
    cfg.data.norm_mean = [0.485, 0.456, 0.406]  # default is imagenet mean
    cfg.data.norm_std = [0.229, 0.224, 0.225]  # default is imagenet std
    cfg.data.save_dir = "log"  # path to save log
    cfg.data.load_train_targets = False  # load training set from target dataset

    # specific datasets
    cfg.market1501 = CfgNode()
    cfg.market1501.use_500k_distractors = False  # add 500k distractors to the gallery set for market1501
    cfg.cuhk03 = CfgNode()
    cfg.cuhk03.labeled_images = False  # use labeled images, if False, use detected images
    cfg.cuhk03.classic_split = False  # use classic split by Li et al. CVPR14 (False = 767/700 split)
    cfg.cuhk03.use_metric_cuhk03 = False  # use cuhk03's metric for evaluation

    # sampler
    cfg.sampler = CfgNode()
    cfg.sampler.train_sampler = "RandomSampler"  # sampler for source train loader
    cfg.sampler.train_sampler_t = "RandomSampler"  # sampler for target train loader
    cfg.sampler.num_instances = 4  # number of instances per identity for RandomIdentitySampler
    cfg.sampler.num_cams = 1  # number of cameras to sample in a batch (for RandomDomainSampler)
    cfg.sampler.num_datasets = 1  # number of datasets to sample in a batch (for RandomDatasetSampler)

    # video reid setting (kept for key compatibility; the plugin's data sets are image data sets)
    cfg.video = CfgNode()
    cfg.video.seq_len = 15  # number of images to sample in a tracklet
    cfg.video.sample_method = "evenly"  # how to sample images from a tracklet
    cfg.video.pooling_method = "avg"  # how to pool features over a tracklet

    # train
    cfg.train = CfgNode()
    cfg.train.optim = "adam"  # optimizer: adam, amsgrad, sgd, rmsprop or radam
    cfg.train.lr = 0.0003  # (peak) learning rate
    cfg.train.weight_decay = 5e-4  # weight decay (L2 penalty)
    cfg.train.max_epoch = 60  # maximum epoch
    cfg.train.start_epoch = 0  # starting epoch (set from the checkpoint when resuming)
    cfg.train.batch_size = 32  # training batch size
    cfg.train.fixbase_epoch = 0  # number of epochs to fix base layers
    cfg.train.open_layers = ["classifier"]  # layers for training while keeping others frozen
    cfg.train.staged_lr = False  # set different lr to different layers
    cfg.train.new_layers = ["classifier"]  # newly added layers with default lr
    cfg.train.base_lr_mult = 0.1  # learning rate multiplier for base layers
    cfg.train.lr_scheduler = "single_step"  # lr scheduler: single_step, multi_step, cosine, warmup_single_step, warmup_multi_step
    cfg.train.stepsize = [20]  # stepsize to decay learning rate
    cfg.train.gamma = 0.1  # learning rate decay multiplier
    cfg.train.print_freq = 20  # print frequency
    cfg.train.seed = 1  # random seed

    # optimizer
    cfg.sgd = CfgNode()
    cfg.sgd.momentum = 0.9  # momentum factor for sgd and rmsprop
    cfg.sgd.dampening = 0.0  # dampening for momentum
    cfg.sgd.nesterov = False  # Nesterov momentum
    cfg.rmsprop = CfgNode()
    cfg.rmsprop.alpha = 0.99  # smoothing constant
    cfg.adam = CfgNode()
    cfg.adam.beta1 = 0.9  # exponential decay rate for first moment
    cfg.adam.beta2 = 0.999  # exponential decay rate for second moment

    # loss
    cfg.loss = CfgNode()
    cfg.loss.name = "softmax"  # loss of stock models: 'softmax' or 'triplet' (picks the stock engine)
    cfg.loss.softmax = CfgNode()
    cfg.loss.softmax.label_smooth = True  # use label smoothing regularizer
    cfg.loss.triplet = CfgNode()
    cfg.loss.triplet.margin = 0.3  # distance margin
    cfg.loss.triplet.weight_t = 1.0  # weight to balance hard triplet loss
    cfg.loss.triplet.weight_x = 0.0  # weight to balance cross entropy loss

    # test
    cfg.test = CfgNode()
    cfg.test.batch_size = 100  # test batch size
    cfg.test.dist_metric = "euclidean"  # distance metric, ['euclidean', 'cosine']
    cfg.test.normalize_feature = False  # normalize feature vectors before computing distance
    cfg.test.ranks = [1, 5, 10, 20]  # cmc ranks
    cfg.test.evaluate = False  # test only
    cfg.test.eval_freq = -1  # evaluation frequency (-1 means to only test after training)
    cfg.test.start_eval = 0  # start to evaluate after a specific epoch
    cfg.test.rerank = False  # use person re-ranking
    cfg.test.visrank = False  # visualize ranked results (only available when cfg.test.evaluate=True)
    cfg.test.visrank_topk = 10  # top-k ranks to visualize
    return cfg
