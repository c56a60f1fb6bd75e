"""The prepared cache: real datasets converted once from their raw formats into memory-mappable arrays.

``hsbench prepare`` (:func:`prepare_dataset`) reads the raw files through a
:class:`hsbench.data.source.SourceFormat` and writes one folder per sample; training reads only this cache
(:func:`open_prepared`), so no raw format is ever parsed twice. The on-disk layout is described in
``hsbench/data/prepared/_layout.py``.
"""

from hsbench.data.prepared._layout import Manifest, SampleEntry, read_manifest, sample_dir_name
from hsbench.data.prepared._open import PreparedLoader, open_prepared, prepare_command
from hsbench.data.prepared._prepare import BadSample, PrepareReport, prepare_dataset
from hsbench.data.prepared._verify import VerifyReport, verify_prepared

__all__ = [
    "BadSample", "Manifest", "PrepareReport", "PreparedLoader", "SampleEntry", "open_prepared", "prepare_command",
    "prepare_dataset", "read_manifest", "sample_dir_name", "VerifyReport", "verify_prepared",
]
