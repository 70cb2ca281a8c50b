"""Train and evaluate a torchreid or torchreid_dense model from a yacs config.

Usage::

    python tools/main.py --config-file configs/dsa_market.yaml [KEY VALUE ...]
    python tools/main.py --config-file configs/san_market.yaml test.evaluate True \\
        model.load_weights log/san_market/model/model.pth.tar-320

The job itself lives in :mod:`torchreid_dense.engine.launch`.
"""
import sys

from torchreid_dense.engine.launch import cli

if __name__ == "__main__":
    sys.exit(cli())
