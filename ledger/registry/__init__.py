"""The registry of units and people: import from CSV or .xlsx files, export to them (SPEC §5.1).

The files are read and written in `formats` (rows to plain records and back, no database), their
rows are checked in `checks` (every problem of every row, nothing written) and the checked rows
are applied to the ledger, all or nothing, in `apply`, which also exports the ledger's registry.
"""

from ledger.registry.apply import ImportSummary, export_registry, import_registry
from ledger.registry.checks import RegistryError, normalise_email, normalise_mark

__all__ = [
    "ImportSummary",
    "RegistryError",
    "export_registry",
    "import_registry",
    "normalise_email",
    "normalise_mark",
]
