"""The machine and software a benchmark ran on, for the report."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata


def cpu_model() -> str:
    """Return the CPU model named in /proc/cpuinfo, or the platform's guess."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages, or "n/a"."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def package_version(name: str) -> str:
    """Return an installed distribution's version, or "not installed"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(server_versions: list[str]) -> list[tuple[str, str]]:
    """Return the (what, value) lines describing this machine and its software."""
    packages = [
        ("SQLAlchemy", "sqlalchemy"),
        ("psycopg", "psycopg"),
        ("PyMySQL", "pymysql"),
        ("mysql-connector-python (DBStore)", "mysql-connector-python"),
        ("Zoho SDK", "zohocrmsdk8-0"),
        ("zoho-sa-store", "zoho-sa-store"),
    ]
    return [
        ("Date", datetime.datetime.now().astimezone().isoformat(timespec="seconds")),
        ("Platform", platform.platform()),
        ("CPU", cpu_model()),
        ("Cores", str(os.cpu_count())),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        *((label, package_version(name)) for label, name in packages),
        ("Databases", ", ".join(server_versions)),
    ]
