"""`offerloop serve` with the test consumers registered beside the real ones (the server runs the app in
this process)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import support

from offerloop.cli.main import app

support.register()
app(prog_name="offerloop")
