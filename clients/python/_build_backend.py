"""A PEP 517 build backend in the standard library alone, so that
``pip install ./clients/python`` needs nothing from a package index (not
even setuptools or wheel): the package is pure Python, and a wheel is a zip
of its files with three metadata files (PEP 427, PEP 566)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "kernelhost"
SUMMARY = ("A client of the kernelhost HTTP API: actions, queries, retries with request ids, "
           "the live event stream")
REQUIRES_PYTHON = ">=3.9"
LICENSE = "Apache-2.0"
TAG = "py3-none-any"


def version() -> str:
    """The package's version: kernelhost.__version__ (client.py), read
    without importing the package."""
    with open(os.path.join(HERE, NAME, "client.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M)
    if m is None:
        raise RuntimeError("no __version__ in kernelhost/client.py")
    return m.group(1)


def _dist_info() -> str:
    return f"{NAME}-{version()}.dist-info"


def metadata() -> str:
    """The core metadata (METADATA, PKG-INFO), the README its
    description."""
    readme = ""
    path = os.path.join(HERE, "README.md")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            readme = f.read()
    return (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version()}\nSummary: {SUMMARY}\n"
            f"License: {LICENSE}\nRequires-Python: {REQUIRES_PYTHON}\n"
            "Classifier: Programming Language :: Python :: 3\nClassifier: Typing :: Typed\n"
            f"Description-Content-Type: text/markdown\n\n{readme}")


def _package_files() -> List[Tuple[str, str]]:
    """(path in the archive, path on disk) of the package's files."""
    out = []
    pkg = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py") or name == "py.typed":
            out.append((f"{NAME}/{name}", os.path.join(pkg, name)))
    return out


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, files: List[Tuple[str, bytes]]) -> str:
    di = _dist_info()
    files = files + [(f"{di}/METADATA", metadata().encode()),
                     (f"{di}/WHEEL", f"Wheel-Version: 1.0\nGenerator: {NAME}-build\nRoot-Is-Purelib: true\n"
                                     f"Tag: {TAG}\n".encode())]
    record = "\n".join([_record_line(p, d) for p, d in files] + [f"{di}/RECORD,,"]) + "\n"
    name = f"{NAME}-{version()}-{TAG}.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for p, d in files + [(f"{di}/RECORD", record.encode())]:
            zi = zipfile.ZipInfo(p, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, d)
    return name


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# -- PEP 517 hooks -------------------------------------------------------

def get_requires_for_build_wheel(config_settings: Optional[Dict[str, str]] = None) -> List[str]:
    """Nothing: the backend is the standard library."""
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, str]] = None) -> List[str]:
    """Nothing."""
    return []


def get_requires_for_build_editable(config_settings: Optional[Dict[str, str]] = None) -> List[str]:
    """Nothing."""
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: Optional[Dict[str, str]] = None) -> str:
    """Writes the .dist-info directory pip reads before building."""
    di = os.path.join(metadata_directory, _dist_info())
    os.makedirs(di, exist_ok=True)
    with open(os.path.join(di, "METADATA"), "w", encoding="utf-8") as f:
        f.write(metadata())
    return _dist_info()


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory: str, config_settings: Optional[Dict[str, str]] = None,
                metadata_directory: Optional[str] = None) -> str:
    """The wheel: the package's files and its metadata."""
    return _write_wheel(wheel_directory, [(p, _read(d)) for p, d in _package_files()])


def build_editable(wheel_directory: str, config_settings: Optional[Dict[str, str]] = None,
                   metadata_directory: Optional[str] = None) -> str:
    """An editable wheel (PEP 660): a .pth file that puts this directory on
    sys.path, so that the installed package is the source tree."""
    return _write_wheel(wheel_directory, [(f"__editable__.{NAME}.pth", (HERE + "\n").encode())])


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, str]] = None) -> str:
    """The source archive: pyproject.toml, this backend, the README and the
    package."""
    base = f"{NAME}-{version()}"
    name = base + ".tar.gz"
    files = [(p, _read(d)) for p, d in _package_files()]
    for extra in ("pyproject.toml", "_build_backend.py", "README.md"):
        if os.path.exists(os.path.join(HERE, extra)):
            files.append((extra, _read(os.path.join(HERE, extra))))
    files.append(("PKG-INFO", metadata().encode()))
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for p, d in files:
            ti = tarfile.TarInfo(f"{base}/{p}")
            ti.size, ti.mode, ti.mtime = len(d), 0o644, 0
            t.addfile(ti, io.BytesIO(d))
    return name
