"""Dataset sources, caching, preprocessing and shared splits."""

from .base import CorruptCacheError, Dataset, DatasetError, OpenMLUnavailableError
from .preprocessing import PreparedData, prepare_data
from .sources import builtin_sources, expand_source, load_dataset, parse_source
from .splits import Split, make_split
from .transformers import NetworkFeatureTransformer, TreeFeatureTransformer

__all__ = [
    "CorruptCacheError",
    "Dataset",
    "DatasetError",
    "NetworkFeatureTransformer",
    "OpenMLUnavailableError",
    "PreparedData",
    "Split",
    "TreeFeatureTransformer",
    "builtin_sources",
    "expand_source",
    "load_dataset",
    "make_split",
    "parse_source",
    "prepare_data",
]
