"""Pictures of the plugin's data: ``dsap`` (DSA-reID Fig. 2), ``synth`` (SynthReID contact sheet),
``textures`` (SAN Fig. 6: images beside their predicted atlases).

Examples::

    python tools/visualize.py dsap --dataset-dir reid-data/market1501 --num 4 --out vis/dsap
    python tools/visualize.py dsap --image a.jpg --iuv densepose/a.png --out vis/a_dsap.png
    python tools/visualize.py synth --dataset-dir reid-data/synthreid/small_s0 --out vis/synth.png
"""
import argparse
import glob
import os.path as osp
import sys

import numpy as np
import torch
from PIL import Image


class DSAPCommand:
    """Save image | IUV | 24 DSAP-images grids for single images or the first images of a data set."""

    name = "dsap"

    @staticmethod
    def add_arguments(p):
        p.add_argument("--image", help="one image (with --iuv)")
        p.add_argument("--iuv", help="its IUV PNG")
        p.add_argument("--dataset-dir", help="a data set directory with densepose/ sidecars")
        p.add_argument("--kind", default="densepose", help="sidecar folder: densepose or densepose_gt")
        p.add_argument("--num", type=int, default=4, help="images to draw from --dataset-dir")
        p.add_argument("--size", type=int, default=32, help="DSAP-image side S")
        p.add_argument("--out", required=True, help="PNG file (single image) or folder (data set)")

    @staticmethod
    def execute(args):
        from torchreid_dense.dense import read_iuv, sidecar_path, warp_dsap
        from torchreid_dense.dense.visualize import save_dsap_figure

        if args.image:
            if not args.iuv:
                sys.exit("dsap: --image needs --iuv (the image's IUV PNG)")
            pairs = [(args.image, args.iuv, args.out)]
        elif args.dataset_dir:
            images = sorted(p for p in glob.glob(osp.join(args.dataset_dir, "**", "*.jpg"), recursive=True)
                            if osp.exists(sidecar_path(args.dataset_dir, p, args.kind)))
            if not images:
                sys.exit(f"dsap: no image under {args.dataset_dir} has a '{args.kind}' sidecar; create them with "
                         "tools/import_densepose.py or tools/extract_densepose.py")
            pairs = [(p, sidecar_path(args.dataset_dir, p, args.kind),
                      osp.join(args.out, osp.splitext(osp.basename(p))[0] + "_dsap.png")) for p in images[:args.num]]
        else:
            sys.exit("dsap: give --image and --iuv, or --dataset-dir")
        for image_path, iuv_path, out in pairs:
            image = np.array(Image.open(image_path).convert("RGB"))
            iuv = read_iuv(iuv_path, size=image.shape[:2])
            dsap, valid = warp_dsap(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(iuv)[None],
                                    size=args.size)
            save_dsap_figure(out, image, iuv, dsap[0].numpy(), valid[0].numpy(), title=osp.basename(image_path))
            print(f"saved {out}")


class SynthCommand:
    """Save a SynthReID contact sheet: identities across cameras, each image beside its IUV and atlas."""

    name = "synth"

    @staticmethod
    def add_arguments(p):
        p.add_argument("--dataset-dir", required=True, help="a generated SynthReID directory")
        p.add_argument("--out", required=True, help="PNG file")
        p.add_argument("--num-ids", type=int, default=6)

    @staticmethod
    def execute(args):
        from torchreid_dense.data.synth.contact_sheet import save_contact_sheet

        save_contact_sheet(args.dataset_dir, args.out, num_ids=args.num_ids)
        print(f"saved {args.out}")


class TexturesCommand:
    """Save SAN's Fig. 6: input images beside their predicted texture atlases, re-rendered onto the body via IUV."""

    name = "textures"

    @staticmethod
    def add_arguments(p):
        p.add_argument("--config-file", default="", help="YAML config naming the SAN-PG model (configs/san_pg.yaml)")
        p.add_argument("--weights", required=True, help="SAN-PG (or SAN) checkpoint")
        p.add_argument("--dataset-dir", required=True, help="a data set directory (IUV sidecars are used if present)")
        p.add_argument("--num", type=int, default=6, help="images to draw (spread over the data set)")
        p.add_argument("--out", required=True, help="PNG file")
        p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")

    @staticmethod
    def execute(args):
        from torchreid_dense.data.texture_generation import build_texture_model, pick_images, texture_previews
        from torchreid_dense.dense.visualize import save_texture_figure
        from torchreid_dense.engine.launch import load_config

        cfg = load_config(args.config_file, args.opts or [])
        model = build_texture_model(cfg, args.weights, verbose=False)
        paths = pick_images(args.dataset_dir, args.num)
        rows = texture_previews(model, paths, args.dataset_dir, height=cfg.data.height, width=cfg.data.width,
                                norm_mean=cfg.data.norm_mean, norm_std=cfg.data.norm_std,
                                texture_range=cfg.san.texture_range)
        save_texture_figure(args.out, rows["images"], rows["textures"], rows["renders"], rows["notes"],
                            titles=rows["names"], title=f"{cfg.model.name}: predicted full textures (SAN Fig. 6)")
        print(f"saved {args.out}")


COMMANDS = [DSAPCommand, SynthCommand, TexturesCommand]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd in COMMANDS:
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.__doc__))
    args = parser.parse_args(argv)
    {cmd.name: cmd for cmd in COMMANDS}[args.command].execute(args)


if __name__ == "__main__":
    main()
