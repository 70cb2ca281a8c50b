"""The one module that reaches into torchreid.

torchreid 0.2.5 from the registry keeps its modules under ``torchreid.reid.*`` while a source
install of deep-person-reid has them under ``torchreid.*``; ``from torchreid.utils import X``
fails on the former. Attribute access through the top-level package works for both, so the rest
of the plugin goes through here.
"""
import warnings

with warnings.catch_warnings():
    # torchreid warns at import that its Cython evaluator is missing; the plugin ships its own.
    warnings.filterwarnings("ignore", message="Cython evaluation")
    import torchreid

models = torchreid.models
data = torchreid.data
engine = torchreid.engine
losses = torchreid.losses
metrics = torchreid.metrics
optim = torchreid.optim
utils = torchreid.utils

Engine = torchreid.engine.Engine
ImageSoftmaxEngine = torchreid.engine.ImageSoftmaxEngine
ImageTripletEngine = torchreid.engine.ImageTripletEngine
ImageDataset = torchreid.data.ImageDataset
ImageDataManager = torchreid.data.ImageDataManager
image_datasets = torchreid.data.datasets.image

# torchreid's stock image data sets the plugin wraps (name -> class).
STOCK_IMAGE_DATASETS = {
    "market1501": image_datasets.Market1501,
    "cuhk03": image_datasets.CUHK03,
    "dukemtmcreid": image_datasets.DukeMTMCreID,
    "msmt17": image_datasets.MSMT17,
    "cuhk01": image_datasets.CUHK01,
    "viper": image_datasets.VIPeR,
    "grid": image_datasets.GRID,
    "cuhk02": image_datasets.CUHK02,
    "ilids": image_datasets.iLIDS,
    "prid": image_datasets.PRID,
    "sensereid": image_datasets.SenseReID,
}


def model_factory():
    """torchreid's private model table (it has no public register function for models)."""
    return vars(torchreid.models)["__model_factory"]


def image_dataset_factory():
    """torchreid's private image data-set table (read-only use: register through the public hook)."""
    return vars(torchreid.data.datasets)["__image_datasets"]


def register_image_dataset(name, cls):
    torchreid.data.register_image_dataset(name, cls)


def read_image(path):
    return torchreid.utils.read_image(path)
