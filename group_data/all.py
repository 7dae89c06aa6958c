"""kdevbox settings for every host. Each key is a setting; a host or group can override any of it.

Nested settings are merged: a host that sets git = {"email": ...} keeps the name set here.
Lists (gitignore_extra, no_proxy) are replaced, not extended. Unknown keys are errors.
Validate without touching a host: the first thing every deploy does.
"""

# The developer account (its home is read from the host). Default: the login user
# (under `sudo pyinfra ...`, the user who ran sudo).
# user = "alice"

# The proxy every download goes through: neovim's release, plugin and kernel checkouts, kernel.org
# (on this machine too), pip (b4, compiledb), apt (unless apt_proxy is set) and the guest build.
# Passwords are allowed: they only ever reach 0600 files. system: also your login shells and sudo.
# password_env: the password of the URLs' user from an environment variable of the machine running
# pyinfra (pyinfra --debug prints this file as it is; the variable's value never shows).
# proxy = {
#     "http": "http://alice@proxy.example.com:3128",
#     "https": "http://alice@proxy.example.com:3128",
#     "password_env": "KDEVBOX_PROXY_PASSWORD",
#     "no_proxy": ["git.internal.example.com"],
#     "system": False,
# }

# apt's proxy. Written to /etc/apt/apt.conf.d/80kdevbox-proxy when set, removed when not.
# When apt_proxy is not set at all, apt uses `proxy`.
# Credentials in the URL are allowed (the file is then mode 0600) and masked in pyinfra's output.
# apt_proxy = {
#     "http": "http://proxy.example.com:3128",
#     "https": "http://proxy.example.com:3128",
#     "no_proxy": ["deb.internal.example.com"],
# }

# git: identity, global gitignore (a kdevbox block in core.excludesfile), git send-email.
# No password here: use a credential helper (git config --global credential.helper ...).
# git = {
#     "name": "Alice Developer",
#     "email": "alice@example.com",
#     "excludesfile": "~/.config/git/ignore",  # default: your current core.excludesfile, else this
#     "gitignore_extra": ["*.dtb.S", "/build-*/"],
#     "sendemail": {
#         "smtp_server": "smtp.example.com",
#         "smtp_port": 587,
#         "smtp_encryption": "tls",
#         "smtp_user": "alice@example.com",
#         "suppresscc": "self",
#         "chainreplyto": False,
#     },
# }

# clangd from the distribution, with a user config (~/.config/clangd/config.yaml) that drops the
# GCC-only flags a kernel compile_commands.json carries; plus the tool that records such a database
# for other make projects (a kernel tree uses its own scripts/clang-tools/gen_compile_commands.py).
# clangd = {
#     "enabled": True,                # False: no clangd (a box that only builds)
#     "package": "clangd-19",         # default "clangd"; a versioned one is linked as /usr/local/bin/clangd
#     "compile_db": "compiledb",      # default "bear"; compiledb comes from PyPI in its own virtualenv
#     "remove_flags": [...],          # default: the GCC-only flags of x86 kernel builds (kdevbox.config)
# }

# neovim with telescope.nvim and telescope-heading.nvim as native packages, clangd through the
# built-in LSP client. `auto` takes the distribution's neovim when it is at least min_version, else
# the official release tarball (pinned version and sha256, unpacked to /opt/nvim-<version>).
# Plugin refs default to upstream tags; telescope's to the newest tag the installed neovim can run.
# neovim = {
#     "enabled": True,                # False: no neovim, plugins or editor config
#     "source": "auto",               # or "apt", "release"
#     "min_version": "0.10",
#     "release_version": "0.12.5",    # with its "release_sha256"; "release_url" for a mirror
#     "leader": " ",                  # <leader>ff files, fg grep, fb buffers, fh headings
#     "manage_init": True,            # False: your init files are not touched; load it yourself
#     "plugins": {"telescope.nvim": {"ref": "0.1.9"}, "plenary.nvim": {"url": "https://mirror/p.git"}},
# }

# WSL2 only (other hosts skip it): /etc/wsl.conf key by key, your other settings kept.
# wsl = {
#     "systemd": True,                # [boot] systemd=true
#     "default_user": True,           # [user] default=<developer>
#     "settings": {"network": {"hostname": "kbox"}, "interop": {"appendWindowsPath": False}},
#     "kvm_group": True,
# }

# Kernel builds (deploys/kernel.py). Nothing is installed unless install is True.
# kernel = {
#     "source": "git",                # or "release" (a kernel.org channel) or "path"
#     "git_url": "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git",
#     "tag": "v6.12.10",
#     "channel": "longterm:6.6",      # for source "release"
#     "path": "/usr/src/linux-source-6.1",  # for source "path"
#     "base": "tinyconfig",           # defconfig, tinyconfig, olddefconfig, localmodconfig (the
#                                     # last two start from /boot/config-$(uname -r) or /proc/config.gz)
#     "fragments": ["guest"],         # templates/kernel/<name>.config
#     "options": ["CONFIG_KASAN=y", "CONFIG_DEBUG_INFO_DWARF5=y"],
#     "localversion": "-kdevbox",
#     "compile_commands": "gen",      # or "bear", "compiledb"
#     "install": False,
#     "selftests": ["size", "timens"],  # built with the kernel; `kdevbox-vm selftest` runs them
#     "wsl_kernel_path": "/mnt/c/Users/you/kdevbox/bzImage",  # WSL2: copy there instead of installing
# }

# QEMU guest image and kdevbox-vm (part of devbox.py; guest_image.py alone).
# guest = {
#     "name": "kdevbox-guest",        # also the hostname and `ssh kdevbox-guest`
#     "suite": "bookworm",
#     "packages": ["strace", "gdb"],
#     "size": "8G", "memory": "4G", "cpus": 4,
#     "ssh_port": 10022,
#     "accel": "auto",                # or "kvm", "tcg"
#     "share": "~/src",               # 9p share at /mnt/host in the guest
#     "network": "bridge",            # default "user" (QEMU's NAT); bridge: tap on a host bridge
#     "bridge": "kdevbr0",
#     "bridge_address": "10.77.0.1/24",  # must not overlap the host's routes (checked)
#     "address": "10.77.0.2",         # the guest's; `ssh kdevbox-guest` goes there
# }

# Patch mailing (SMTP settings live in git.sendemail above): git send-email and b4.
# patch_mail = {
#     "enabled": True,
#     "b4_version": "0.14.3",
# }

# Low-level tools from your distribution's archive; one it lacks is named in the deploy's output.
# tools = {
#     "packages": ["msr-tools", "trace-cmd", "bpftrace", "gdb", "cscope", "universal-ctags", "sshuttle"],
#     "load_msr": True,               # modprobe msr now and at boot, where the kernel has it
# }
