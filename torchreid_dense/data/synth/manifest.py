"""``manifest.json`` of a SynthReID directory: what it holds and how it was made; a directory is reused only
when its manifest matches the settings asked for."""
import json
import os.path as osp

from ...dense.atlas import atlas_shape

__all__ = ["GENERATOR_VERSION", "ManifestMismatchError", "build_manifest", "read_manifest", "check_manifest"]

GENERATOR_VERSION = "1.0"
# parameters added to SynthConfig after generator 1.0 was released, with the value the older sets were made with
_ADDED_PARAMS = {"misalignment": 1.0}


class ManifestMismatchError(RuntimeError):
    """An existing SynthReID directory was generated with other settings than the ones asked for."""


def build_manifest(config, preset, seed, jobs, results):
    """The ``manifest.json`` bytes of a generation: settings, counts and the images without detection."""
    rels = [j[0] for j in jobs]
    split_of = [r.split("/")[0] for r in rels]
    pids = [int(osp.basename(r)[:4]) for r in rels if not r.startswith("pit/")]
    train_pids = {p for r, p in zip(rels, pids) if r.startswith("bounding_box_train/")}
    test_pids = {p for r, p in zip(rels, pids) if not r.startswith("bounding_box_train/") and p > 0}
    no_det = sorted(r for r, det, _ in results if not det)
    counts = {
        "train_images": split_of.count("bounding_box_train"), "train_ids": len(train_pids),
        "query_images": split_of.count("query"), "gallery_images": split_of.count("bounding_box_test"),
        "test_ids": len(test_pids), "distractor_images": sum(1 for r in rels if osp.basename(r).startswith("0000_")),
        "pit_images": split_of.count("pit"), "pit_textures": config.pit_textures,
        "no_detection_images": len(no_det), "swapped_images": sum(1 for _, _, s in results if s),
    }
    manifest = {
        "generator": "torchreid_dense.data.synth", "generator_version": GENERATOR_VERSION, "preset": preset,
        "seed": int(seed), "params": config.to_dict(), "counts": counts,
        "atlas_shape": list(atlas_shape(config.tile)), "no_detection": no_det,
    }
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def read_manifest(path):
    """The manifest of a SynthReID directory (a dict); raises FileNotFoundError naming the file."""
    with open(osp.join(path, "manifest.json")) as f:
        return json.load(f)


def check_manifest(out, root, preset, seed, config):
    """Raise :class:`ManifestMismatchError` unless the manifest of ``out`` records these settings (the
    generator version, ``preset``, ``seed`` and every parameter of ``config``)."""
    try:
        manifest = read_manifest(out)
    except (FileNotFoundError, json.JSONDecodeError) as e:
        raise ManifestMismatchError(
            f"{out} exists but has no readable manifest.json ({e}); it was not written by this generator "
            "or is damaged: delete the directory and it will be regenerated") from None
    want = {"generator_version": GENERATOR_VERSION, "preset": preset, "seed": int(seed), "params": config.to_dict()}
    # sets written before a parameter existed were generated with its default (the generator is unchanged there)
    manifest["params"] = {**_ADDED_PARAMS, **(manifest.get("params") or {})}
    diff = [k for k, v in want.items() if manifest.get(k) != v]
    if diff:
        detail = "; ".join(f"{k}: on disk {manifest.get(k)!r}, asked {want[k]!r}" for k in diff if k != "params")
        if "params" in diff:
            have = manifest.get("params") or {}
            keys = sorted(k for k in set(have) | set(want["params"]) if have.get(k) != want["params"].get(k))
            detail = "; ".join(filter(None, [detail, f"params differ in {keys}"]))
        raise ManifestMismatchError(
            f"{out} was generated with other settings ({detail}). Delete it, or regenerate it with "
            f"`python tools/make_synthreid.py --root {root} --preset {preset} --seed {seed} --force`")
