"""Name registries of the plugin and the one place that plugs them into torchreid.

Modules declare what they provide next to where it is defined::

    from torchreid_dense.registry import MODELS

    @MODELS.register("dsa_reid", engine="dsa")
    def dsa_reid(num_classes, loss="softmax", pretrained=True, use_gpu=True, **kwargs):
        ...

``import torchreid_dense`` imports those modules (``models``, ``losses``, ``data``, ``engine``), then calls
:func:`register`, which inserts their entries into torchreid's model factory and image-dataset registry. It is
idempotent, and the only change importing the plugin makes to torchreid (tests/test_registry.py checks it).
This module imports none of the declaring modules: they all import it.
"""
from . import compat

__all__ = ["Registry", "MODELS", "DATASETS", "ENGINES", "LOSSES", "PIPELINES", "register"]


class Registry:
    """A name -> object table; duplicate names are rejected, unknown names list the known ones."""

    def __init__(self, kind):
        self.kind = kind
        self._objects = {}
        self._meta = {}

    def register(self, name=None, obj=None, **meta):
        """Register ``obj`` under ``name``; used as ``@REG.register("name", key=value)`` or called."""
        if obj is not None:
            self._add(name or obj.__name__, obj, meta)
            return obj

        def deco(fn):
            self._add(name or fn.__name__, fn, meta)
            return fn

        return deco

    def _add(self, name, obj, meta):
        if name in self._objects and self._objects[name] is not obj:
            raise KeyError(f"{self.kind} '{name}' is already registered by {self._objects[name]!r}")
        self._objects[name] = obj
        self._meta[name] = dict(meta)

    def get(self, name):
        try:
            return self._objects[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} '{name}'; registered {self.kind}s: {sorted(self._objects)}"
            ) from None

    def meta(self, name):
        """Metadata given at registration (for models: ``engine``, the engine that trains it)."""
        self.get(name)
        return dict(self._meta[name])

    def names(self):
        return sorted(self._objects)

    def items(self):
        return sorted(self._objects.items())

    def __contains__(self, name):
        return name in self._objects

    def __len__(self):
        return len(self._objects)

    def __repr__(self):
        return f"Registry({self.kind!r}, {self.names()})"


# name -> builder(num_classes, loss='softmax', pretrained=True, use_gpu=True, **kwargs); meta 'engine'
MODELS = Registry("model")
# name -> torchreid ImageDataset subclass
DATASETS = Registry("dataset")
# name -> torchreid Engine subclass (stock engines included, see torchreid_dense.engine)
ENGINES = Registry("engine")
# name -> nn.Module loss class
LOSSES = Registry("loss")
# engine name -> prepare(cfg, info) -> cfg: steps run before that engine's job (SAN: its step 1 and pseudo textures)
PIPELINES = Registry("pipeline")


def register():
    """Insert every model and data set declared so far into torchreid's lookups (idempotent); ``import
    torchreid_dense`` has imported every declaring module before it calls this."""
    factory = compat.model_factory()
    for name, builder in MODELS.items():
        current = factory.get(name)
        if current is None:
            factory[name] = builder
        elif current is not builder:
            raise KeyError(
                f"torchreid already has a model named '{name}' ({current!r}); "
                "torchreid_dense will not replace a stock model"
            )
    datasets = compat.image_dataset_factory()
    for name, cls in DATASETS.items():
        current = datasets.get(name)
        if current is None:
            compat.register_image_dataset(name, cls)
        elif current is not cls:
            raise KeyError(
                f"torchreid already has an image data set named '{name}' ({current!r}); "
                "torchreid_dense will not replace it"
            )
