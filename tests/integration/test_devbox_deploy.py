"""deploys/devbox.py against real throwaway hosts: a chroot and an SSH host, verified by testinfra."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tests.setups import NO_GUEST, EditorUpstreams, deploy, verify, write_inventory
from tests.testhosts import DEV_USER, MIRROR, SshHost

MIRROR_HOST = str(urlsplit(MIRROR).hostname)

GIT = {
    "name": "Ada Kernel",
    "email": "ada@example.org",
    "gitignore_extra": ["/build-*/", "*.dtb.S"],
    "sendemail": {
        "smtp_server": "smtp.example.org",
        "smtp_port": 587,
        "smtp_encryption": "tls",
        "smtp_user": "ada@example.org",
    },
}


def test_chroot_host_deploy_verify_and_rerun(
    chroot_root: Path, tmp_path: Path, editor_upstreams: EditorUpstreams
) -> None:
    home = chroot_root / "home" / DEV_USER
    # What the developer had before: their own git alias and their own ignore file.
    (home / ".gitconfig").write_text("[alias]\n\tst = status\n[core]\n\texcludesfile = ~/.gitignore_mine\n")
    (home / ".gitignore_mine").write_text("my-notes.txt\n")
    for path in (home / ".gitconfig", home / ".gitignore_mine"):
        os.chown(path, 1000, 1000)
    name = f"@chroot{chroot_root}"
    inventory = write_inventory(
        tmp_path,
        [(name, {"user": DEV_USER})],
        group_data={
            "git": GIT,
            # The proxy does not exist: the mirror the deploy installs from must bypass it.
            "apt_proxy": {"http": "http://proxy.example.org:3128", "no_proxy": [MIRROR_HOST]},
            "neovim": editor_upstreams.neovim_settings(),
            **NO_GUEST,
        },
    )

    first = deploy(inventory)[name]
    assert not first["failed"]
    changed = {op for names in first["changed"] for op in names}
    assert "git | Kernel patterns in /home/dev/.gitignore_mine" in changed
    assert (
        "apt proxy | Write /etc/apt/apt.conf.d/80kdevbox-proxy (proxy http://proxy.example.org:3128/)"
        in changed
    )
    assert "git | git config --global sendemail.smtpencryption" in changed

    checked = verify(inventory)
    assert checked.returncode == 0, checked.output
    assert checked.passed >= 10 and checked.skipped == 0 and checked.failed == 0
    # Checks of a capability that is off do not run (and so cannot pass without checking).
    assert "test_git_send_email_dry_run" in checked.ran
    assert "test_image_built_for_developer" not in checked.ran  # guest.enabled is false here

    assert deploy(inventory)[name]["changed"] == []

    # The user's own settings survive; kdevbox's block went into the file they already use.
    gitconfig = (home / ".gitconfig").read_text()
    assert "st = status" in gitconfig
    mine = (home / ".gitignore_mine").read_text().splitlines()
    assert mine[0] == "my-notes.txt" and "*.ko" in mine and "/build-*/" in mine

    # The verify suite fails when the host drifts from the inventory, and the deploy repairs it.
    (home / ".gitignore_mine").write_text("my-notes.txt\n")
    assert verify(inventory).failed > 0
    assert deploy(inventory)[name]["changed"] != []
    assert verify(inventory).returncode == 0


def test_ssh_host_as_sudo_user_with_merged_group_settings(
    ssh_host: SshHost, tmp_path: Path, editor_upstreams: EditorUpstreams
) -> None:
    """Log in as the developer with sudo (the usual VM case); user defaults to the login user.

    The editor side as a vimscript user on Debian 12 would have it: neovim from apt (its 0.7.2 is
    enough once min_version allows it), a versioned clangd package, Bear, an existing init.vim.
    """
    home = ssh_host.root / "home" / DEV_USER
    (home / ".config/nvim").mkdir(parents=True)
    (home / ".config/nvim/init.vim").write_text("set number\n")
    subprocess.run(["chown", "-R", "1000:1000", str(home / ".config")], check=True)
    data = {
        **ssh_host.inventory_data(user=DEV_USER),
        "_sudo": True,
        "git": {"email": "ada@lab.example.org", "excludesfile": "~/.config/git/ignore"},
        "apt_proxy": {"https": "http://ada:Pr0xyPass@proxy.lab.example.org:3128"},
        "clangd": {"package": "clangd-14", "compile_db": "bear"},
        "neovim": {"source": "auto", "min_version": "0.7", "leader": ","},
    }
    group = {"git": GIT, "neovim": editor_upstreams.neovim_settings(), **NO_GUEST}
    inventory = write_inventory(tmp_path, [("labvm", data)], group_data=group)

    first = deploy(inventory)["labvm"]
    assert not first["failed"] and first["changed"]
    changed = {op for names in first["changed"] for op in names}
    assert "clangd | clangd resolves to /usr/bin/clangd-14" in changed
    assert not any("release in /opt" in op for op in changed), changed

    checked = verify(inventory)
    assert checked.returncode == 0, checked.output
    assert checked.passed >= 10 and checked.failed == 0

    assert deploy(inventory)["labvm"]["changed"] == []

    home = ssh_host.root / "home" / DEV_USER
    gitconfig = (home / ".gitconfig").read_text()
    # Host email over the group's, group name kept: nested settings merge.
    assert "email = ada@lab.example.org" in gitconfig and "name = Ada Kernel" in gitconfig
    assert (home / ".gitconfig").stat().st_uid == 1000
    assert (home / ".config/git/ignore").stat().st_uid == 1000
    proxy_conf = ssh_host.root / "etc/apt/apt.conf.d/80kdevbox-proxy"
    assert proxy_conf.stat().st_mode & 0o777 == 0o600 and proxy_conf.stat().st_uid == 0
    # The vimscript user keeps init.vim (neovim will not start with init.lua beside it).
    init_vim = (home / ".config/nvim/init.vim").read_text().splitlines()
    assert init_vim[0] == "set number" and "lua require('kdevbox')" in init_vim
    assert not (home / ".config/nvim/init.lua").exists()
