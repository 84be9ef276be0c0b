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

ALWAYS_IGNORED = (".git", "**/__pycache__", "*.pyc", ".venv", "venv")
"""What the build context always leaves out."""

IGNORED = (*ALWAYS_IGNORED, "data", "logs", "reports", "notebooks/experiments")
"""What it leaves out with the default paths (relative to the project)."""


def ignored_for(project_root: str, folders: list[str]) -> list[str]:
    """:data:`ALWAYS_IGNORED` and each of ``folders`` (the configured data, cache, runs, logs,
    reports and notebook folders) that lies inside the project, relative to it; a folder inside
    another one listed is left out."""
    root = os.path.abspath(project_root)
    inside = []
    for folder in folders:
        relative = os.path.relpath(os.path.abspath(os.path.join(root, folder)), root)
        if relative != "." and not relative.startswith(os.pardir):
            inside.append(relative.replace(os.sep, "/"))
    kept = [f for f in dict.fromkeys(inside) if not any(f.startswith(o + "/") for o in inside if o != f)]
    return [*ALWAYS_IGNORED, *kept]


def outside_project(project_root: str, path: str) -> bool:
    """Whether ``path`` is outside ``project_root`` (docker cannot copy it from the build context)."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(project_root))
    return relative == os.pardir or relative.startswith(os.pardir + os.sep)


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


def write_docker_folder(root: str, folders: list[str] | None = None) -> list[str]:
    """Create ``docker/dockerfile`` and ``docker/dockerfile.dockerignore`` under ``root`` where missing
    (the ignore file leaves out ``folders``, the configured data, logs and reports folders; by
    default the default ones); returns the paths written (relative to ``root``)."""
    written = []
    ignored = ignored_for(root, folders) if folders is not None else IGNORED
    files = {"dockerfile": dockerfile_text(), "dockerfile.dockerignore": "\n".join(ignored) + "\n"}
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


def write_run_context(project_root: str, run_folder: str, command: list[str],
                      folders: list[str] | None = None) -> str:
    """Write ``<run folder>/docker/``: ``Dockerfile``, its ignore file (the project without
    ``folders``, its configured data, logs and reports (by default the default ones), but with
    this run's folder), the requirements and a copy of this package. The run folder must be
    inside the project (see :func:`outside_project`). Returns the Dockerfile's path."""
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
    ignored = [*(ignored_for(project_root, folders) if folders is not None else IGNORED), f"!{run_relative}"]
    fileio.atomic_write_text(dockerfile + ".dockerignore", "\n".join(ignored) + "\n")
    return dockerfile


def build_command(project_root: str, dockerfile: str, name: str, version: str) -> list[str]:
    """``docker build`` of the run's image, tagged ``name:version`` and ``name``."""
    return ["docker", "build", "-f", os.path.relpath(dockerfile, project_root), "--tag", f"{name}:{version}",
            "--tag", name, "."]
