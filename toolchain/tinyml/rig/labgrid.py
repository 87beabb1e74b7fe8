"""labgrid places as rig boards, through labgrid's client API in a venv of its own.

Why a venv of its own: labgrid 26.0.1 depends on `pyserial-labgrid`, a fork that installs the
top-level `serial` package over the pyserial 3.5 tinyml pins, so the two cannot share one
environment. `ensure_labgrid()` makes `~/.cache/tinyml/labgrid-<version>/` once (python -m
venv, then pip install labgrid==<version>), under a lock and marked complete only at the end;
`$TINYML_LABGRID_VENV` names another one. tinyml then runs `labgrid_agent.py` with that venv's
Python: it acquires the place with labgrid's ClientSession, reports the place's
NetworkSerialPort as a pyserial URL, holds the place while tinyml validates through it, and
releases it when tinyml closes its stdin: on success, on an error, on Ctrl-C, and when tinyml
dies (the pipe closes and the parent-death signal ends the agent).

A place that another user holds is reported `busy` at once, or waited for up to the board's
`wait_s` when its rig entry says busy = "wait".
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tinyml.core.errors import DeviceError, InputError, ToolError
from tinyml.core.tools import run
from tinyml.rig.children import Children

log = logging.getLogger("tinyml.rig")

LABGRID_VERSION = "26.0.1"
VENV_ENV = "TINYML_LABGRID_VENV"
AGENT = Path(__file__).with_name("labgrid_agent.py")
# -I: isolated, so the agent's folder (where this module, labgrid.py, would hide the labgrid package) is not on sys.path.
AGENT_PYTHON_FLAGS = ("-I",)
_COMPLETE_MARK = ".tinyml-complete"
INSTALL_TIMEOUT_S = 15 * 60
PLACES_TIMEOUT_S = 60.0
# The agent's first answer (connect, acquire); a busy place waited for adds the board's wait_s.
ACQUIRE_TIMEOUT_S = 60.0
RELEASE_TIMEOUT_S = 15.0


def venv_dir() -> Path:
    override = os.environ.get(VENV_ENV)
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinyml" / f"labgrid-{LABGRID_VERSION}"


def labgrid_python(install: bool = False) -> Path:
    """The labgrid venv's Python; with `install`, the venv is made first when missing."""
    directory = venv_dir()
    python = directory / "bin" / "python"
    if (directory / _COMPLETE_MARK).exists() or (os.environ.get(VENV_ENV) and python.exists()):
        return python
    if not install:
        raise ToolError(f"labgrid is not installed for tinyml ({directory} is missing)", "run `tinyml rig setup-labgrid` once (it needs PyPI), or set $TINYML_LABGRID_VENV to a venv with labgrid")
    return ensure_labgrid()


def ensure_labgrid() -> Path:
    """Make the labgrid venv unless it is there; safe when two processes try at once."""
    directory = venv_dir()
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits here, then finds it complete
        if (directory / _COMPLETE_MARK).exists():
            return directory / "bin" / "python"
        shutil.rmtree(directory, ignore_errors=True)  # a half-made venv of a run that died
        log.info("making the labgrid venv in %s (once)", directory)
        for command in ([sys.executable, "-m", "venv", str(directory)], [str(directory / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", f"labgrid=={LABGRID_VERSION}"]):
            result = run(command, timeout=INSTALL_TIMEOUT_S)
            if result.returncode != 0:
                lines = [line for line in result.stdout.splitlines() if line.strip()]
                raise ToolError(f"installing labgrid failed: {lines[-1] if lines else 'no output'}", f"check that PyPI can be reached, then run `tinyml rig setup-labgrid` again (or `{' '.join(command)}`)")
        (directory / _COMPLETE_MARK).write_text(LABGRID_VERSION, encoding="utf-8")
    return directory / "bin" / "python"


def list_places(coordinator: str) -> list[str]:
    """The places the coordinator knows; a DeviceError when it cannot be reached."""
    result = run([labgrid_python(), *AGENT_PYTHON_FLAGS, AGENT, "places", coordinator], timeout=PLACES_TIMEOUT_S)
    answer = _last_json(result.stdout)
    if "places" not in answer:
        raise DeviceError(f"the labgrid coordinator {coordinator} did not answer ({answer.get('message', 'no answer')})", "start it (`labgrid-coordinator --listen HOST:PORT`) or fix coordinator in the rig file's [rig] table")
    return answer["places"]


def check_places(rig_path: Path, coordinator: str, places: dict[str, str]) -> None:
    """InputError naming the board whose place the coordinator does not have (board -> place)."""
    known = set(list_places(coordinator))
    for board, place in places.items():
        if place not in known:
            have = ", ".join(sorted(known)) or "none"
            raise InputError(f"{rig_path}: board '{board}': place '{place}' does not exist on the coordinator {coordinator} (it has: {have})", f"create it (`labgrid-client -x {coordinator} -p {place} create` and add-match its NetworkSerialPort) or fix the place name")


@dataclass
class HeldPlace:
    """A place this run holds; `release()` lets go (also done by stopping the agent)."""

    place: str
    url: str
    agent: subprocess.Popen

    def release(self) -> None:
        if self.agent.stdin is not None and not self.agent.stdin.closed:
            try:
                self.agent.stdin.close()  # the agent releases the place and exits
            except OSError:
                pass
        try:
            self.agent.wait(timeout=RELEASE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.agent.terminate()


class PlaceBusy(DeviceError):
    """Another user holds the place (and the board was not to wait, or waited long enough)."""


def start_agent(children: Children, coordinator: str, place: str, wait_s: float) -> subprocess.Popen:
    """The agent that will acquire `place` (started from the main thread: see tinyml.rig.children)."""
    return children.start([labgrid_python(), *AGENT_PYTHON_FLAGS, AGENT, "hold", coordinator, place, "--wait", f"{wait_s:g}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def await_place(agent: subprocess.Popen, coordinator: str, place: str, wait_s: float) -> HeldPlace:
    """The place once the agent holds it; PlaceBusy or DeviceError when it cannot."""
    assert agent.stdout is not None
    answer = _read_answer(agent, ACQUIRE_TIMEOUT_S + wait_s)
    status = answer.get("status")
    if status == "acquired":
        return HeldPlace(place, answer["url"], agent)
    try:
        agent.wait(timeout=RELEASE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        agent.terminate()
    if status == "busy":
        raise PlaceBusy(f"labgrid place {place} is held by {answer.get('holder')}", "wait for them to release it, set busy = \"wait\" in the rig file, or run again later (busy boards are resumed)")
    if status == "missing":
        raise DeviceError(f"labgrid place {place} does not exist on {coordinator}", "create it with `labgrid-client create` and `add-match`")
    raise DeviceError(f"labgrid could not acquire place {place}: {answer.get('message', 'no answer')}", f"check the coordinator {coordinator} and the exporter that shares the place's port")


def _read_answer(agent: subprocess.Popen, timeout: float) -> dict:
    """The agent's JSON line, read in a thread so that a hung agent cannot hang the board."""
    import threading

    answer: list[dict] = []

    def read() -> None:
        assert agent.stdout is not None
        for line in agent.stdout:
            found = _last_json(line)
            if found:
                answer.append(found)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not answer:
        agent.terminate()
        return {"status": "error", "message": "the labgrid agent gave no answer" + ("" if not reader.is_alive() else f" in {timeout:.0f} s")}
    return answer[0]


def _last_json(text: str) -> dict:
    for raw in reversed(text.splitlines()):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return {}
