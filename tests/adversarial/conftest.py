from __future__ import annotations

import sys
from pathlib import Path

# The live-process fixture of the pipeline's own process tests (a database the processes share and a
# workspace); its module imports the pipeline tests' ``support`` from their folder.
sys.path.insert(0, str(Path(__file__).parent.parent / "pipeline"))

from tests.pipeline.test_processes import target  # noqa: F401
