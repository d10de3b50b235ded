from __future__ import annotations

import sys
from pathlib import Path

# Tests are not a package; make the shared schema helper importable by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
