"""Dataset sources, caching, preprocessing and shared splits."""

from .base import CorruptCacheError, Dataset, DatasetError, OpenMLUnavailableError
from .preprocessing import (
    PreparedData,
    describe_dataset,
    describe_inputs,
    describe_preprocessing,
    prepare_data,
)
from .roles import ColumnRole
from .sources import builtin_sources, dataset_from_frame, expand_source, load_dataset, parse_source
from .splits import Split, make_split
from .transformers import NetworkFeatureTransformer, TreeFeatureTransformer

__all__ = [
    "ColumnRole",
    "CorruptCacheError",
    "Dataset",
    "DatasetError",
    "NetworkFeatureTransformer",
    "OpenMLUnavailableError",
    "PreparedData",
    "Split",
    "TreeFeatureTransformer",
    "builtin_sources",
    "dataset_from_frame",
    "describe_dataset",
    "describe_inputs",
    "describe_preprocessing",
    "expand_source",
    "load_dataset",
    "make_split",
    "parse_source",
    "prepare_data",
]
