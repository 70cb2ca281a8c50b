"""torchreid_dense.models: the imports below exist to register the models (torchreid_dense.registry.MODELS)."""
from . import san  # noqa: F401  (registers san, san_r18, san_pg, san_pg_r18)
from . import dsa_reid  # noqa: F401  (registers dsa_reid, dsa_reid_r18)
from .build import build_model_from_config, engine_name_of  # noqa: F401  (config -> (model, engine name))
