"""Only compiledb on PATH (what the clangd task installs with compile_db: compiledb): for kernel tests
of the compiledb recorder without installing clangd."""

from kdevbox.operations import apt_install, pip_tool
from kdevbox.target import current_target

target = current_target()
apt_install("a Python for compiledb", ["python3-venv"])
pip_tool("compiledb", target.config.clangd.compiledb_version)
