from __future__ import annotations

import sys
from pathlib import Path

# Tests are not a package; reuse the OCI schema helper from tests/unit/oci by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oci"))
