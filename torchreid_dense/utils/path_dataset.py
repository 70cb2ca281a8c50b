"""A list of files as a DataLoader data set: each item is what a subclass makes of one path."""
import torch.utils.data

__all__ = ["PathDataset"]


class PathDataset(torch.utils.data.Dataset):
    """``paths`` and the ``transform`` a subclass's ``__getitem__`` applies to what it reads from ``paths[index]``.

    ``transform`` runs in the DataLoader workers, so it must be picklable.
    """

    def __init__(self, paths, transform):
        self.paths = list(paths)
        self.transform = transform

    def __len__(self):
        return len(self.paths)
