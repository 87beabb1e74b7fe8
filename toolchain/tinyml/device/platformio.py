"""The PlatformIO back end of `tinyml flash` and `tinyml boards prepare`.

As in Zephyr's west runners, the back end is one small class whose capabilities are data and
whose command lines are plain lists that tests compare exactly; every call goes through
tinyml.core.tools.run. The commands are the ones PlatformIO documents:

    pio run -d DIR -e ENV                                  build
    pio run -d DIR -e ENV -t upload --upload-port PORT     build and upload
    pio pkg install -d DIR -e ENV                          fetch platform, toolchain, framework, libraries
    pio pkg install -g -t OWNER/TOOL@VERSION               fetch an upload tool
    pio pkg list -g --only-platforms -v                    what is installed
    pio project config -d DIR --json-output                the project's configuration

Every call runs with PlatformIO's telemetry off (`PLATFORMIO_SETTING_ENABLE_TELEMETRY=No`, the
environment form of `pio settings set enable_telemetry No`; PlatformIO 6.2's app.get_setting
reads it before its state file), so a classroom's builds leave no trace outside the room.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinyml.core.errors import ToolError
from tinyml.core.tools import run

log = logging.getLogger("tinyml.platformio")

INSTALL_HINT = "install PlatformIO Core with `pip install platformio==6.2.0` (tinyml's setup does), or add `pio` to PATH"
# PlatformIO downloads from this host; when it cannot be reached a download would only retry.
REGISTRY_HOST = ("api.registry.platformio.org", 443)
REGISTRY_PROBE_SECONDS = 4.0
BUILD_TIMEOUT_SECONDS = 30 * 60  # a first build of TFLM on a slow laptop takes minutes, not half an hour
# Added to the environment of every pio call: no usage data leaves the machine.
PRIVACY_ENV = {"PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No"}


@dataclass(frozen=True)
class Capabilities:
    """What a back end can do, so callers ask instead of assuming."""

    build: bool
    upload: bool
    upload_port: bool  # takes an explicit serial port
    prefetch: bool  # can download everything once, to work offline later
    list_installed: bool


@dataclass(frozen=True)
class InstalledPackage:
    name: str
    version: str
    path: Path | None


def find_pio() -> str:
    """The `pio` program: on PATH, else the one installed beside this Python (PlatformIO is a dependency)."""
    on_path = shutil.which("pio")
    if on_path:
        return on_path
    beside = Path(sys.executable).parent / "pio"
    if beside.is_file():
        return str(beside)
    raise ToolError("PlatformIO ('pio') was not found", INSTALL_HINT)


def registry_reachable(timeout: float = REGISTRY_PROBE_SECONDS) -> bool:
    """True if PlatformIO's registry answers a TCP connection within `timeout` (DNS included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(REGISTRY_HOST, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # DNS lookups ignore the socket timeout: bound the whole probe with a thread.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


class PlatformIO:
    name = "platformio"
    capabilities = Capabilities(build=True, upload=True, upload_port=True, prefetch=True, list_installed=True)

    def __init__(self, program: str | None = None) -> None:
        self.program = program or find_pio()

    # ---- command lines (pure: the tests compare them exactly) ----
    def build_command(self, project_dir: Path, env: str) -> list[str]:
        return [self.program, "run", "-d", str(project_dir), "-e", env]

    def upload_command(self, project_dir: Path, env: str, port: str | None) -> list[str]:
        command = [*self.build_command(project_dir, env), "-t", "upload"]
        return command + ["--upload-port", port] if port else command

    def install_project_command(self, project_dir: Path, env: str) -> list[str]:
        return [self.program, "pkg", "install", "-d", str(project_dir), "-e", env]

    def install_tool_command(self, spec: str) -> list[str]:
        return [self.program, "pkg", "install", "-g", "-t", spec]

    def list_platforms_command(self) -> list[str]:
        return [self.program, "pkg", "list", "-g", "--only-platforms", "-v"]

    def config_command(self, project_dir: Path) -> list[str]:
        return [self.program, "project", "config", "-d", str(project_dir), "--json-output"]

    # ---- calls ----
    def call(self, command: list[str], on_line: Callable[[str], None] | None = None, timeout: float | None = BUILD_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
        return run(command, on_line=on_line, timeout=timeout, env={**os.environ, **PRIVACY_ENV})

    def installed_platforms(self) -> list[InstalledPackage]:
        result = self.call(self.list_platforms_command(), timeout=120)
        if result.returncode != 0:
            raise ToolError(f"`pio pkg list` failed: {_last_line(result.stdout)}", "run `pio pkg list -g` by hand to see why")
        # Lines look like "├── nordicnrf52 @ 10.6.0 (required: ..., /root/.platformio/platforms/nordicnrf52)".
        found = []
        for match in re.finditer(r"^[│ ]*[├└]── (\S+) @ (\S+) \((?:[^,)]*)(?:, ([^)]*))?\)", result.stdout, re.M):
            found.append(InstalledPackage(match.group(1), match.group(2), Path(match.group(3)) if match.group(3) else None))
        return found

    def platform_installed(self, name: str, version: str | None) -> InstalledPackage | None:
        for package in self.installed_platforms():
            if package.name == name and (version is None or package.version == version):
                return package
        return None

    def project_config(self, project_dir: Path) -> dict[str, dict[str, object]]:
        result = self.call(self.config_command(project_dir), timeout=120)
        if result.returncode != 0:
            raise ToolError(f"PlatformIO cannot read {project_dir / 'platformio.ini'}: {_last_line(result.stdout)}", "render the project again with `tinyml render --force`")
        start = result.stdout.find("[")
        return {section: dict(items) for section, items in json.loads(result.stdout[start:])}


def uploader_tools(platform_dir: Path) -> list[str]:
    """`owner/name@version` of every upload tool an installed platform declares (platform.json)."""
    manifest = json.loads((platform_dir / "platform.json").read_text(encoding="utf-8"))
    specs = []
    for name, package in sorted(manifest.get("packages", {}).items()):
        if package.get("type") == "uploader":
            owner = package.get("owner", "platformio")
            version = package.get("version", "")
            if "://" in version:  # a package pinned to a URL is fetched from that URL
                specs.append(version)
            else:
                specs.append(f"{owner}/{name}@{version}" if version else f"{owner}/{name}")
    return specs


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
