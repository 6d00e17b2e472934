#!/usr/bin/env python3
"""Django's command-line utility for the example (python3 manage.py help)."""
import os
import sys
from pathlib import Path


def main() -> None:
    here = Path(__file__).resolve().parent
    # The mqlock package of this repository, unless one is installed.
    sys.path.append(str(here.parents[1] / "clients" / "python"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drfdemo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
