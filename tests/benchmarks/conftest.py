"""Make the repository's ``benchmarks`` package importable from its smoke tests.

``benchmarks/`` is not part of the installed distribution (it measures the project, it
does not ship with it), so its tests import it from the checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
