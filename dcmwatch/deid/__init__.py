"""De-identification by DICOM PS3.15 Annex E: the Basic Profile, every option, overrides.

Pure: ``make_deidentifier(settings, key)`` returns a callable ``ds -> ds`` that edits a pydicom
Dataset in place, with keyed pseudonyms, UIDs and date shifts that stay consistent across files,
restarts and machines sharing the key. The action table is generated from the standard
(``tools/gen_annex_e.py`` → ``table.py``).
"""

from dcmwatch.deid.deidentifier import Deidentifier, make_deidentifier
from dcmwatch.deid.pseudonyms import MIN_KEY_BYTES
from dcmwatch.deid.settings import DeidSettings, Override
from dcmwatch.deid.table import EDITION

__all__ = [
    "EDITION",
    "MIN_KEY_BYTES",
    "DeidSettings",
    "Deidentifier",
    "Override",
    "make_deidentifier",
]
