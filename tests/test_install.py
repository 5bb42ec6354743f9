"""`pip install .` (not editable) into a fresh environment, then `driftwarden demo`: issue 12's first step.

The wheel is built from this checkout and installed into a new venv; the dependencies come from
the test's own environment through a .pth line (installing them again would download ~550 MB).
The new venv's Python runs outside the checkout, so nothing can be imported from the repository.
"""

from __future__ import annotations

import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_wheel_runs_the_demo_from_its_own_files(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                    str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = dist.glob("driftwarden-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "driftwarden/config/demo.yaml" in names and "driftwarden/daemon/cli.py" in names
    assert not [n for n in names if n.split("/")[0] in ("daemon", "detectors", "alerts", "config")]  # one namespace

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    target = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", target, str(wheel)],
                   check=True, cwd=tmp_path)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(target) / "zz-test-deps.pth").write_text("\n".join(deps) + "\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(python), *args], capture_output=True, text=True, cwd=tmp_path, timeout=600)

    where = run("-c", "import driftwarden.daemon.cli as c, importlib.util as u; "
                      "print(c.__file__); print(u.find_spec('daemon'))")
    assert where.returncode == 0, where.stderr
    cli_file, top_level = where.stdout.split()
    assert cli_file.startswith(target)  # the installed copy, not the checkout
    assert top_level == "None"  # no top-level `daemon` (python-daemon's name) was installed
    demo = run("-m", "driftwarden.daemon.cli", "demo", "--workdir", str(tmp_path / "demo"), "--events", "12000")
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "notifications:" in demo.stdout and "report:" in demo.stdout, demo.stdout[-2000:]
    version = run("-m", "driftwarden.daemon.cli", "--version")
    assert version.returncode == 0 and version.stdout.strip().endswith("0.1.0"), (version.stdout, version.stderr)
