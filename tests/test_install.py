"""The README's "Install it in your project" steps, run as a user would: a new virtualenv outside
the checkout, the install commands as written (with the checkout's path for /path/to/fakepm),
then the README's first pytest example as a new project's test file, run with that venv's pytest.
Slow (a venv and a wheel build, ~1 min with pip's cache); needs PyPI or pip's cache for the
dependencies."""

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")


def _section(heading: str) -> str:
    with open(README, encoding="utf-8") as fh:
        text = fh.read()
    body = text.split(heading, 1)[1]
    return body.split("\n## ", 1)[0]


def install_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", _section("## Install it in your project"), re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines()
            if line.strip().startswith("python -m pip install")]


def first_pytest_example() -> str:
    return re.search(r"```python\n(.*?)```", _section("## Testing with pytest"), re.S).group(1)


def test_the_readme_names_an_install_command_and_a_pytest_example():
    cmds = install_commands()
    assert cmds and all("/path/to/fakepm" in c or "pytest" in c for c in cmds)
    assert "def test_" in first_pytest_example()


@pytest.mark.timeout(900)
def test_install_in_a_new_project_and_run_the_first_pytest_example(tmp_path):
    project = tmp_path / "myproject"
    project.mkdir()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_ADDOPTS")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    for cmd in install_commands():
        args = shlex.split(cmd.replace("/path/to/fakepm", ROOT))
        assert args[:4] == ["python", "-m", "pip", "install"], cmd
        r = subprocess.run([python, *args[1:], "-q"], cwd=project, env=env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    (project / "test_app.py").write_text(first_pytest_example())
    r = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout
    # the installed package is the checkout's, not a path into it
    r = subprocess.run([python, "-c", "import fakepm, sys; print(fakepm.__file__)"], cwd=project, env=env,
                       capture_output=True, text=True, timeout=60)
    assert str(venv) in r.stdout, r.stdout
