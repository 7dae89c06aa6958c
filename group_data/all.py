"""kdevbox settings for every host. Each key is a setting; a host or group can override any of it.

Nested settings are merged: a host that sets git = {"email": ...} keeps the name set here.
Lists (gitignore_extra, no_proxy) are replaced, not extended. Unknown keys are errors.
Validate without touching a host: the first thing every deploy does.
"""

# The developer account (its home is read from the host). Default: the login user
# (under `sudo pyinfra ...`, the user who ran sudo).
# user = "alice"

# apt's proxy. Written to /etc/apt/apt.conf.d/80kdevbox-proxy when set, removed when not.
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
