"""Data model: dataset cards, samples, datasets and the built-in dataset catalog."""

from hsbench.data.card import DatasetCard, OfficialSplit
from hsbench.data.dataset import Dataset, Sample, array_digest, validate_sample

__all__ = ["DatasetCard", "OfficialSplit", "Dataset", "Sample", "array_digest", "validate_sample"]
