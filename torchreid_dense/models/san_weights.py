"""SAN's step 2 initialisation (Sec. 3.2): SA-Enc (+ SA-Dec) weights copied from a SAN-PG checkpoint."""
from ..utils.checkpoint import read_model_state

__all__ = ["load_san_pg_weights"]


def load_san_pg_weights(san_model, path, decoder=True, verbose=True):
    """Step 2 initialisation (Sec. 3.2): copy SA-Enc (+ SA-Dec) weights of a SAN-PG checkpoint.

    Every ``encoder.*`` entry (and, with ``decoder``, every ``decoder.*`` entry) of ``san_model`` must be
    present in the checkpoint with the same shape; the heads keep their initialisation.

    Args:
        san_model (SAN): the model to initialise (may be wrapped in DataParallel).
        path (str): a checkpoint file (torchreid's ``{'state_dict': ...}`` or a bare state dict).
        decoder (bool): also copy SA-Dec; False copies the encoder only and SA-Dec keeps its own init
            (``san.init_decoder False``: the SAN authors' code starts its decoder from scratch).
        verbose (bool): print a one-line summary.

    Returns:
        dict with ``loaded`` (keys copied), ``kept`` (model keys left as they were) and
        ``ignored`` (checkpoint keys not used).
    """
    model = getattr(san_model, "module", san_model)
    source = read_model_state(path, "SAN-PG checkpoint", "; train san_pg first (step 1)")[1]
    target = model.state_dict()
    prefixes = ("encoder.", "decoder.") if decoder else ("encoder.",)
    parts = "SA-Enc/SA-Dec" if decoder else "SA-Enc"
    wanted = [k for k in target if k.startswith(prefixes)]
    missing = [k for k in wanted if k not in source]
    if missing:
        raise KeyError(
            f"'{path}' lacks {len(missing)} {parts} entries of the model (first: {missing[:3]}); "
            "is it a san_pg checkpoint of the same backbone and san.decoder?"
        )
    bad = [f"{k}: checkpoint {tuple(source[k].shape)} vs model {tuple(target[k].shape)}"
           for k in wanted if source[k].shape != target[k].shape]
    if bad:
        raise ValueError(
            f"'{path}' does not fit this SAN ({len(bad)} shape mismatches, e.g. {bad[:3]}); check "
            "backbone, san.decoder, decoder_widths and texture_size against the san_pg run"
        )
    model.load_state_dict({k: source[k] for k in wanted}, strict=False)
    wanted_set = set(wanted)
    report = {
        "loaded": wanted,
        "kept": [k for k in target if k not in wanted_set],
        "ignored": [k for k in source if k not in wanted_set],
    }
    if verbose:
        kept = ", ".join(sorted({k.split(".")[0] for k in report["kept"]})) or "-"
        print(
            f"=> SAN-PG weights from '{path}': {len(report['loaded'])} entries loaded "
            f"({'encoder + decoder' if decoder else 'encoder only'}), {len(report['kept'])} kept ({kept}), "
            f"{len(report['ignored'])} ignored"
        )
    return report
