"""Docker files: the folder ``curifactory init`` creates, and the image ``experiment --docker`` builds.

The image holds the project's code and requirements and runs ``experiment``:
``docker build -f docker/dockerfile -t myproject . && docker run myproject my_experiment``.
Data, logs and reports stay out of it (``docker/dockerfile.dockerignore``, the ignore file
docker's BuildKit reads for ``-f docker/dockerfile``); mount them instead.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from curifactory import fileio

DOCKER_FOLDER = "docker"

IGNORED = (".git", "**/__pycache__", "*.pyc", ".venv", "venv", "data", "logs", "reports", "notebooks/experiments")
"""What the build context leaves out by default (paths relative to the project)."""


def dockerfile_text(python: str | None = None) -> str:
    """A Dockerfile for the project: the running Python's minor version, graphviz for the
    reports' stage graphs, the project's ``requirements.txt`` when there is one."""
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    return "\n".join([
        "# The project's image: its code and requirements, with `experiment` as the command.",
        "# Build from the project folder:  docker build -f docker/dockerfile -t PROJECT .",
        "# Run an experiment, keeping the cache outside:",
        "#   docker run -v \"$PWD/data:/project/data\" PROJECT EXPERIMENT [options]",
        f"FROM python:{python}-slim",
        "RUN apt-get update && apt-get install -y --no-install-recommends graphviz git \\",
        "    && rm -rf /var/lib/apt/lists/*",
        "WORKDIR /project",
        "COPY . /project",
        "# requirements.txt must name this package (how you install it: PyPI's 'curifactory' is 0.20);",
        "# `experiment --docker` writes an image of one run that carries a copy of it instead.",
        "RUN if [ -f requirements.txt ]; then pip install --no-cache-dir -r requirements.txt; fi",
        'ENTRYPOINT ["experiment"]',
        "",
    ])


def write_docker_folder(root: str) -> list[str]:
    """Create ``docker/dockerfile`` and ``docker/dockerfile.dockerignore`` under ``root`` where missing;
    returns the paths written (relative to ``root``)."""
    written = []
    files = {"dockerfile": dockerfile_text(), "dockerfile.dockerignore": "\n".join(IGNORED) + "\n"}
    for name, text in files.items():
        path = os.path.join(root, DOCKER_FOLDER, name)
        if not os.path.exists(path):
            fileio.atomic_write_text(path, text)
            written.append(f"{DOCKER_FOLDER}/{name}")
    return written


def _requirements(run_folder: str) -> str:
    """The run's ``requirements.txt`` without this package and without local installs (the
    image carries this package's own files instead)."""
    try:
        with open(os.path.join(run_folder, "requirements.txt"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        lines = []
    kept = [line for line in lines if line.strip() and not line.startswith(("-e", "#"))
            and "file://" not in line and not line.lower().replace("_", "-").startswith("curifactory")]
    return "\n".join(kept) + "\n"


def run_dockerfile_text(context_folder: str, command: list[str], python: str | None = None) -> str:
    """The Dockerfile of one run's image: its requirements, this package's files, the project
    code and the run folder (its cache entries), with the run's reproduction as the command."""
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    return "\n".join([
        "# The image of one run, written by `experiment --docker`; build from the project folder.",
        f"FROM python:{python}-slim",
        "RUN apt-get update && apt-get install -y --no-install-recommends graphviz git \\",
        "    && rm -rf /var/lib/apt/lists/*",
        f"COPY {context_folder}/requirements.txt /opt/curifactory/requirements.txt",
        "RUN pip install --no-cache-dir -r /opt/curifactory/requirements.txt",
        f"COPY {context_folder}/curifactory /opt/curifactory/curifactory",
        "ENV PYTHONPATH=/opt/curifactory",
        "WORKDIR /project",
        "COPY . /project",
        'ENTRYPOINT ["python", "-m", "curifactory"]',
        "CMD " + json.dumps(command),
        "",
    ])


def write_run_context(project_root: str, run_folder: str, command: list[str]) -> str:
    """Write ``<run folder>/docker/``: ``Dockerfile``, its ignore file (the project without
    data, logs and reports, but with this run's folder), the requirements and a copy of this
    package. Returns the Dockerfile's path."""
    import curifactory

    folder = os.path.join(run_folder, "docker")
    relative = os.path.relpath(folder, project_root).replace(os.sep, "/")
    run_relative = os.path.relpath(run_folder, project_root).replace(os.sep, "/")
    package = os.path.join(folder, "curifactory")
    if os.path.isdir(package):
        shutil.rmtree(package)
    shutil.copytree(os.path.dirname(curifactory.__file__), package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    fileio.atomic_write_text(os.path.join(folder, "requirements.txt"), _requirements(run_folder))
    dockerfile = os.path.join(folder, "Dockerfile")
    fileio.atomic_write_text(dockerfile, run_dockerfile_text(relative, command))
    ignored = [*IGNORED, f"!{run_relative}"]
    fileio.atomic_write_text(dockerfile + ".dockerignore", "\n".join(ignored) + "\n")
    return dockerfile


def build_command(project_root: str, dockerfile: str, name: str, version: str) -> list[str]:
    """``docker build`` of the run's image, tagged ``name:version`` and ``name``."""
    return ["docker", "build", "-f", os.path.relpath(dockerfile, project_root), "--tag", f"{name}:{version}",
            "--tag", name, "."]
