"""Generate the SynthReID data set (Market-1501 layout with dense-semantics sidecars).

    python tools/make_synthreid.py --root DIR --preset {tiny,small,full} --seed N [--workers K]
                                   [--height H --width W] [--misalignment M] [--force]

Writes ``DIR/synthreid/<preset>_s<seed>/`` (``_<H>x<W>`` appended for a non-default size, ``_m<M>`` for a
non-default misalignment); the files depend only on the preset, size, misalignment and seed, not on
``--workers``.
"""
import argparse
import os
import sys

from torchreid_dense.data.synth.generate import PRESETS, dataset_dir, ensure_dataset, generate_dataset, make_config


def build_parser():
    p = argparse.ArgumentParser(description="Generate the SynthReID data set.")
    p.add_argument("--root", required=True, help="data root; the set goes to ROOT/synthreid/<preset>_s<seed>")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="rendering processes")
    p.add_argument("--height", type=int, default=None, help="image height (default 128)")
    p.add_argument("--width", type=int, default=None, help="image width (default 64)")
    p.add_argument("--misalignment", type=float, default=None,
                   help="scale of pose/viewpoint spread, box jitter and occluder odds (default 1: the preset's)")
    p.add_argument("--force", action="store_true", help="replace an existing directory")
    return p


def main(argv=None):
    a = build_parser().parse_args(argv)
    extra = {} if a.misalignment is None else {"misalignment": a.misalignment}
    config = make_config(a.preset, height=a.height, width=a.width, **extra)
    out = dataset_dir(a.root, a.preset, a.seed, config)
    if a.force or not os.path.exists(out):
        path = generate_dataset(a.root, a.preset, a.seed, workers=a.workers, config=config, force=a.force)
    else:
        path = ensure_dataset(a.root, a.preset, a.seed, config=config)
        print(f"{path} already exists with matching settings; use --force to regenerate it", file=sys.stderr)
    print(path)


if __name__ == "__main__":
    main()
