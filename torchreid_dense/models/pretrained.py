"""ImageNet weights for the plugin's backbones: downloaded by torch hub, or read from a local file.

Every model the plugin builds (``dsa_reid``, ``san``, ``san_pg`` and their ``_r18`` variants) takes its
torchvision ResNet from :func:`imagenet_resnet`. ``pretrained`` is ``True`` (torchvision's ImageNet file,
fetched once into torch hub's ``checkpoints`` folder), ``False`` (random initialisation) or the path of a
local copy of that file (``model.pretrained_path``: machines without internet). A failed download or an
unusable file raises :class:`PretrainedWeightsError`, which says which file is wanted, where to put it and
how to do without it.
"""
import os
import os.path as osp

import torch
import torchvision

__all__ = ["PretrainedWeightsError", "imagenet_resnet", "hub_checkpoint_dir", "load_backbone_file"]


class PretrainedWeightsError(FileNotFoundError):
    """ImageNet weights that cannot be downloaded or read (the message says what to do)."""


def hub_checkpoint_dir():
    """torch hub's ``checkpoints`` folder, where torchvision looks for (and downloads) its weight files."""
    return osp.join(torch.hub.get_dir(), "checkpoints")


def _alternatives(url):
    return (f"put the file '{osp.basename(url)}' ({url}) into {hub_checkpoint_dir()} (torch hub's checkpoints "
            "folder; $TORCH_HOME moves it), or give a local copy with model.pretrained_path FILE "
            "(build_model(..., pretrained='FILE')), or train from random weights with model.pretrained False "
            "(build_model(..., pretrained=False))")


def _download(arch, url, what):
    cached = osp.join(hub_checkpoint_dir(), osp.basename(url))
    had_file = osp.isfile(cached)
    try:
        return torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - network, proxy, hash or file errors: one message for the user
        reason = f"{type(exc).__name__}: {exc}"
        if had_file:
            raise PretrainedWeightsError(
                f"{what}: the ImageNet weights of {arch} in {cached} cannot be read ({reason}); the file is "
                "incomplete or corrupt: delete it and " + _alternatives(url)) from None
        raise PretrainedWeightsError(
            f"{what}: the ImageNet weights of {arch} could not be downloaded ({reason}); without internet, "
            + _alternatives(url)) from None


def load_backbone_file(path, net, what="model"):
    """Load the state dict in ``path`` (a torchvision ImageNet file, or a dict with ``state_dict``) into ``net``.

    Every parameter and buffer of ``net`` except its ImageNet classifier ``fc`` must be in the file with the
    same shape; extra entries are ignored.

    Raises:
        PretrainedWeightsError: naming the file, when it is missing, unreadable or made for another network.
    """
    path = osp.expanduser(os.fspath(path))
    if not osp.isfile(path):
        raise PretrainedWeightsError(f"{what}: pretrained weights file '{path}' (model.pretrained_path) does not "
                                     "exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a state dict
        raise PretrainedWeightsError(f"{what}: cannot read '{path}' as a PyTorch state dict "
                                     f"({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PretrainedWeightsError(f"{what}: '{path}' holds a {type(state).__name__}, not a state dict")
    own = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    missing = [k for k in own if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)} (needs {tuple(v.shape)})" for k, v in own.items()
             if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)]
    if missing or wrong:
        sample = ", ".join(list(state)[:3])
        raise PretrainedWeightsError(
            f"{what}: '{path}' does not fit the {type(net).__name__} backbone: "
            + (f"{len(missing)} tensors missing (e.g. {', '.join(missing[:3])}; the file has {sample}, ...)"
               if missing else "")
            + ("; " if missing and wrong else "")
            + (f"{len(wrong)} of another shape (e.g. {'; '.join(wrong[:3])})" if wrong else "")
            + "; give torchvision's ImageNet file of this backbone")
    net.load_state_dict({k: state[k] for k in own}, strict=False)
    return net


def imagenet_resnet(arch, pretrained=True, what="model"):
    """torchvision's ``arch`` (``resnet50``, ``resnet18``) with ImageNet weights as ``pretrained`` says.

    Args:
        arch (str): torchvision model name.
        pretrained (bool or str): ``True``: torchvision's ``IMAGENET1K_V1`` file through torch hub (cached in
            :func:`hub_checkpoint_dir`); ``False``/``''``: random weights; a path: that local file.
        what (str): the model being built, for messages.

    Raises:
        PretrainedWeightsError: the download failed or the file is unusable (the message names the file
            torchvision wants, the folder to put it in, ``model.pretrained_path`` and ``model.pretrained False``).
    """
    net = getattr(torchvision.models, arch)(weights=None)
    if isinstance(pretrained, (str, os.PathLike)):
        return load_backbone_file(pretrained, net, what) if os.fspath(pretrained) else net
    if pretrained:
        url = torchvision.models.get_model_weights(arch).IMAGENET1K_V1.url
        net.load_state_dict(_download(arch, url, what))
    return net
