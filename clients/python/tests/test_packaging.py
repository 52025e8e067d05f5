"""The package installs with pip and nothing else: the build backend
(_build_backend.py) is the standard library, and so is the package."""

import hashlib
import base64
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import unittest
import zipfile

import kernelhost

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def backend():
    spec = importlib.util.spec_from_file_location("_build_backend", os.path.join(ROOT, "_build_backend.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class PackagingTest(unittest.TestCase):
    def test_versions_agree(self) -> None:
        with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
            py = re.search(r'^version = "([^"]+)"$', f.read(), re.M).group(1)
        self.assertEqual({py, backend().version(), kernelhost.__version__}, {kernelhost.__version__})

    def test_wheel_holds_the_package_and_checks_out(self) -> None:
        b = backend()
        self.assertEqual(b.get_requires_for_build_wheel(), [], "nothing to fetch from an index")
        with tempfile.TemporaryDirectory() as d:
            name = b.build_wheel(d)
            self.assertEqual(name, f"kernelhost-{kernelhost.__version__}-py3-none-any.whl")
            with zipfile.ZipFile(os.path.join(d, name)) as z:
                names = set(z.namelist())
                di = f"kernelhost-{kernelhost.__version__}.dist-info"
                mods = {f"kernelhost/{m}.py" for m in ("__init__", "_transport", "aio", "client", "errors",
                                                        "models", "sse", "testing")}
                self.assertEqual(names, mods | {"kernelhost/py.typed", f"{di}/METADATA", f"{di}/WHEEL",
                                                f"{di}/RECORD"})
                meta = z.read(f"{di}/METADATA").decode()
                self.assertIn("Requires-Python: >=3.9", meta)
                self.assertNotIn("Requires-Dist", meta, "no dependencies")
                for line in z.read(f"{di}/RECORD").decode().splitlines():
                    path, digest, size = line.split(",")
                    if path.endswith("RECORD"):
                        continue
                    data = z.read(path)
                    want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                    self.assertEqual((digest, int(size)), ("sha256=" + want, len(data)), path)
            sdist = b.build_sdist(d)
            self.assertTrue(os.path.exists(os.path.join(d, sdist)))

    def test_pip_installs_it_offline(self) -> None:
        if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
            self.skipTest("no pip for " + sys.executable)
        with tempfile.TemporaryDirectory() as d:
            target = os.path.join(d, "site")
            p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--quiet", "--target", target,
                                ROOT], capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            p = subprocess.run([sys.executable, "-c", "import kernelhost, kernelhost.aio; print(kernelhost.__file__)"],
                               capture_output=True, text=True, cwd=d, env=dict(os.environ, PYTHONPATH=target))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.strip().startswith(target), p.stdout)


class ReadmeTest(unittest.TestCase):
    def test_readme_python_compiles(self) -> None:
        import ast

        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
        self.assertGreaterEqual(len(blocks), 4)
        for b in blocks:
            compile(b, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        loop = next(b for b in blocks if "for event in kh.follow" in b)
        self.assertLessEqual(len(loop.strip().splitlines()), 22, "the agent loop stays about 20 lines")


if __name__ == "__main__":
    unittest.main()
