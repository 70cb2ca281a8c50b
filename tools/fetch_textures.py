"""Download the SAN authors' CUHK03 (labeled) pseudo textures (256x256, Google Drive) as textures/ sidecars of cuhk03.

The file id is ``SAN_CUHK03_TEXTURES['file_id']`` in ``torchreid_dense/data/texture_fetch.py`` (``--file-id``
overrides it). Without network, download the file by hand and pass it with ``--archive``.

Examples::

    python tools/fetch_textures.py --root reid-data
    python tools/fetch_textures.py --root reid-data --archive ~/Downloads/texture_cuhk03_labeled.zip
"""
import sys

from torchreid_dense.data.texture_fetch import cli

if __name__ == "__main__":
    sys.exit(cli())
