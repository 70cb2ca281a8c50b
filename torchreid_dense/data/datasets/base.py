"""The plugin's image data sets read their images with the plugin's reader, not torchreid's.

torchreid's ``read_image`` retries forever when a file is truncated or not an image (it prints and tries
again), which hangs a job without naming the file. The plugin's own data sets (SynthReID, the partial
re-ID sets, the ``<name>_dsap`` / ``<name>_texture`` wrappers) read with
:func:`torchreid_dense.compat.read_image`, which raises :class:`~torchreid_dense.compat.ImageReadError`
naming the file. torchreid's data sets used directly keep torchreid's reader: importing the plugin
changes nothing in torchreid.
"""
from ... import compat

__all__ = ["SafeImageReading", "SafeImageDataset"]


class SafeImageReading:
    """Mixin for a torchreid image data set: its items, with the image read by :func:`compat.read_image`."""

    def read_item(self, index):
        """``(item, image)``: torchreid's item dict of ``index`` and the image before the transform."""
        img_path, pid, camid, dsetid = self.data[index]
        image = compat.read_image(img_path)
        img = self._transform_image(self.transform, self.k_tfm, image) if self.transform is not None else image
        return {"img": img, "pid": pid, "camid": camid, "impath": img_path, "dsetid": dsetid}, image

    def __getitem__(self, index):
        return self.read_item(index)[0]


class SafeImageDataset(SafeImageReading, compat.ImageDataset):
    """torchreid's ``ImageDataset`` reading with the plugin's reader: the base of the plugin's data sets."""
