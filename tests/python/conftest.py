"""pytest configuration for the tests of clients/python.

The package is imported from this repository's clients/python; the tests
that need a broker start their own (mqlock_stack.Stack).
"""

import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
sys.path.insert(0, str(here.parents[1] / "clients" / "python"))
