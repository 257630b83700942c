"""``python3 -m strassen_hw ...``: the ``strassen-hw`` command, without relying on PATH."""

import sys

from .cli import main

sys.exit(main())
