"""Make this directory's helper modules (``_symbolizer_oracles``, ``_core_helpers``) importable by name.

pytest's default import mode puts each test file's directory on ``sys.path``, but ``--import-mode=importlib``
and package-style test directories do not; this keeps ``import _symbolizer_oracles`` working under all of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
