"""The docker folder ``curifactory init`` creates: a Dockerfile for the project and its ignore file.

The image holds the project's code and requirements and runs ``experiment``:
``docker build -f docker/dockerfile -t myproject . && docker run myproject my_experiment``.
Data, logs and reports stay out of it (``docker/dockerfile.dockerignore``, the ignore file
docker's BuildKit reads for ``-f docker/dockerfile``); mount them instead.
"""

from __future__ import annotations

import os
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
        "RUN if [ -f requirements.txt ]; then pip install --no-cache-dir -r requirements.txt; fi \\",
        "    && (pip show curifactory >/dev/null 2>&1 || pip install --no-cache-dir curifactory)",
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
