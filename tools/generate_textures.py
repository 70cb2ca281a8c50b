"""Predict SAN-PG pseudo full textures for every image of a data set (SAN, AAAI 2020, Sec. 3.1).

Writes ``<dataset_dir>/textures/<rel>/<stem>.png`` sidecars, read by the ``<name>_texture`` data sets.
Resumable (existing textures are skipped unless ``--overwrite``), atomic writes, batched, on the GPU
when the config's ``use_gpu`` is on and there is one.

Examples::

    python tools/generate_textures.py --config-file configs/san_pg.yaml --weights log/san_pg/model/model.pth.tar-60 \
        --dataset market1501
    python tools/generate_textures.py --config-file configs/san_pg_synth.yaml --weights san_pg_r18.pth \
        --dataset synthreid --root reid-data --batch-size 128 data.workers 2
"""
import sys

from torchreid_dense.data.texture_generation import cli

if __name__ == "__main__":
    sys.exit(cli())
