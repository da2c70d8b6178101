"""The Docker image serves the pages' npm assets (base map, Swagger UI).

No Docker engine runs here, so this reads the Dockerfile's stages (an npm stage running
``npm ci --ignore-scripts`` on the lock file, whose node_modules the build stage copies
in before ``pip wheel``), then builds the wheel from a tree after that npm step, as the
build stage does, and checks that the installed package would find every asset the API
serves (``api.web.installed``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from api import web

ROOT = Path(__file__).resolve().parents[2]


def stages() -> dict[str, list[str]]:
    """Instructions of each stage of the Dockerfile (continuations joined), by name."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.match(r"FROM \S+(?: AS (\S+))?$", line, re.I):
            current = found.setdefault(m[1] or f"stage{len(found)}", [])
        current.append(line)
    return found


def test_an_npm_stage_installs_the_locked_packages_without_scripts() -> None:
    npm = stages()["npm"]
    copies = [line for line in npm if line.startswith("COPY ")]
    assert copies == ["COPY dashboards/package.json dashboards/package-lock.json ./"]
    assert "WORKDIR /src/dashboards" in npm
    assert any(re.match(r"RUN npm ci --ignore-scripts\b", line) for line in npm)


def test_the_build_stage_wheels_the_sources_after_the_npm_step() -> None:
    build = stages()["build"]
    copy = build.index("COPY --from=npm /src/dashboards/node_modules dashboards/node_modules")
    wheel = next(i for i, line in enumerate(build) if line.startswith("RUN pip wheel"))
    assert build.index("COPY . .") < copy < wheel
    assert "**/node_modules" in (ROOT / ".dockerignore").read_text().split()


def test_a_wheel_built_after_the_npm_step_serves_every_asset(tmp_path: Path) -> None:
    node_modules = ROOT / "dashboards" / "node_modules"
    if not all(web.installed(node_modules).values()):
        if os.environ.get("CI"):
            pytest.fail("CI installs the npm packages (scripts/test runs npm ci)")
        pytest.skip("npm ci --ignore-scripts --prefix dashboards not run")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(tmp_path),
         str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("shiptrack-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    assert web.installed(site / "dashboards" / "node_modules") == dict.fromkeys(web.PACKAGES, True)
    # their licences travel with them; the rest of node_modules does not
    vendored = {p.relative_to(site).as_posix() for p in site.rglob("node_modules/**/*")
                if p.is_file()}
    assert {f"dashboards/node_modules/{name}/LICENSE" for name in web.PACKAGES} <= vendored
    assert not any(n.endswith("package.json") for n in vendored)
