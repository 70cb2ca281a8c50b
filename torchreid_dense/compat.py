"""The one module that reaches into torchreid.

torchreid 0.2.5 from the registry keeps its modules under ``torchreid.reid.*`` while a source
install of deep-person-reid has them under ``torchreid.*``; ``from torchreid.utils import X``
fails on the former. Attribute access through the top-level package works for both, so the rest
of the plugin goes through here; :data:`PACKAGE` names the package that holds the modules.
"""
import warnings

from PIL import Image, UnidentifiedImageError

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

PACKAGE = models.__name__.rpartition(".")[0]  # 'torchreid.reid' (PyPI 0.2.5) or 'torchreid' (source install)
LAYOUT = "source" if PACKAGE == "torchreid" else "pypi"
VERSION = getattr(torchreid, "__version__", "unknown")

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


def module_name(name):
    """The full name of torchreid's module ``name`` (e.g. ``'metrics.rank'``) in the installed layout."""
    return f"{PACKAGE}.{name}"


def cython_evaluator_available():
    """Whether torchreid's compiled Cython evaluator (``metrics/rank_cylib``, built by a source install) imports."""
    return bool(getattr(metrics.rank, "IS_CYTHON_AVAI", False))


def register_image_dataset(name, cls):
    torchreid.data.register_image_dataset(name, cls)


class ImageReadError(OSError):
    """An image of a data set that is missing, truncated or not an image."""


def read_image(path):
    """Read an image as RGB; a missing, truncated or non-image file raises :class:`ImageReadError` naming it.

    The plugin's own data sets read with it (:mod:`torchreid_dense.data.datasets.base`): torchreid's
    ``read_image`` retries forever on such a file. torchreid's is left as it is.
    """
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise ImageReadError(f"{path}: the image does not exist; re-extract the data set or remove the entry") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(
            f"{path}: cannot read the image ({err}); the file is truncated or not an image: "
            "re-extract or re-download the data set, or delete the file") from err
