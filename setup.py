"""Install torchreid-dense: DSA-reID and SAN as a torchreid plugin."""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    here = osp.dirname(osp.abspath(__file__))
    with open(osp.join(here, "torchreid_dense", "version.py")) as f:
        scope = {}
        exec(f.read(), scope)
    return scope["__version__"]


def read_readme():
    here = osp.dirname(osp.abspath(__file__))
    path = osp.join(here, "README.md")
    if not osp.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read()


INSTALL_REQUIRES = [
    "torch>=2.0",
    "torchvision>=0.15",
    # the PyPI package (0.2.5, modules under torchreid.reid) or deep-person-reid 1.4.0 installed from its source
    "torchreid>=0.2.5",
    "yacs>=0.1.8",
    "numpy>=1.23",
    "gdown>=4.7",
    "Pillow>=9.0",
    "tqdm>=4.60",
    "matplotlib>=3.5",
    "numba>=0.57",  # the fused CPU kernel of warp_dsap (torch path used where it is missing)
    # torchreid 0.2.5 imports these at module import time but does not declare them.
    "scipy>=1.9",
    "h5py>=3.7",
    "opencv-python-headless>=4.6",
    "tensorboard>=2.10",
]

EXTRAS_REQUIRE = {
    "test": ["pytest>=7.0", "pytest-timeout>=2.1"],
    "export": ["onnx>=1.14", "onnxruntime>=1.16", "onnxscript>=0.1"],
}

setup(
    name="torchreid-dense",
    version=read_version(),
    description="DSA-reID (CVPR 2019) and SAN (AAAI 2020) for torchreid: densely semantically aligned person re-ID",
    long_description=read_readme(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["torchreid_dense", "torchreid_dense.*"]),
    python_requires=">=3.9",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    include_package_data=True,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
