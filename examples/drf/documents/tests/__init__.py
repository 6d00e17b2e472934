"""Tests of the example and of mqlock.django: python3 manage.py test documents.

The permission tests start a real mosquitto and mqlockd (with tickets
required) on free loopback ports through tests/python/mqlock_stack.py of
this repository; MQLOCKD_BIN names the mqlockd to use (default
build/mqlockd).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "python"))
