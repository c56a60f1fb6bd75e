"""Data model: dataset cards, samples, datasets and the built-in dataset catalog."""

from hsbench.data.card import DatasetCard, OfficialSplit
from hsbench.data.dataset import Dataset, Sample, array_digest, validate_sample
from hsbench.data.provider import DatasetProvider

__all__ = ["DatasetCard", "DatasetProvider", "OfficialSplit", "Dataset", "Sample", "array_digest", "validate_sample"]
