"""A tiny compiler cache for the Verilator runtime, run by make as ``$(OBJCACHE)``.

Usage (set by :mod:`strassen_hw.sim.build`): ``OBJCACHE="python objcache.py CACHE_DIR"``, so
make runs ``python objcache.py CACHE_DIR c++ ... -c -o verilated.o .../verilated.cpp``.

Verilator compiles its runtime (``verilated.cpp``, ``verilated_vpi.cpp``, ...) into every build
directory, and that takes most of a small design's build time. These objects do not depend on
the design, so this script keeps them keyed by the whole command line and the source file, and
copies them in on the next build. Any other compilation runs unchanged. Standalone on purpose:
it imports nothing from the package (make starts it once per object).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _cacheable(command):
    root = os.environ.get("VERILATOR_ROOT")
    if not root or "-c" not in command or "-o" not in command:
        return None
    source = Path(command[-1])
    if source.suffix != ".cpp" or not source.is_file():
        return None
    if Path(root, "include") not in source.resolve().parents:
        return None
    return source


def main(argv):
    cache, command = Path(argv[0]), argv[1:]
    source = _cacheable(command)
    if source is None:
        return subprocess.call(command)
    output = Path(command[command.index("-o") + 1])
    depend = output.with_suffix(".d")
    compiler = shutil.which(command[0]) or command[0]
    facts = [str(os.stat(path).st_mtime_ns) for path in (source, compiler) if os.path.exists(path)]
    key = hashlib.sha256("\0".join(command + [compiler, str(source.stat().st_size)] + facts)
                         .encode()).hexdigest()[:24]
    stored = cache / f"{key}.o"
    if stored.is_file():
        shutil.copyfile(stored, output)
        if stored.with_suffix(".d").is_file():
            shutil.copyfile(stored.with_suffix(".d"), depend)
        return 0
    status = subprocess.call(command)
    if status == 0:
        cache.mkdir(parents=True, exist_ok=True)
        for src, suffix in ((depend, ".d"), (output, ".o")):  # .o last: it marks a hit
            if src.is_file():
                fd, tmp = tempfile.mkstemp(dir=cache, prefix=".tmp-")
                os.close(fd)
                shutil.copyfile(src, tmp)
                os.replace(tmp, cache / f"{key}{suffix}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
