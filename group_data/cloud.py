"""Settings for hosts in the `cloud` group of inventories/vms.example.py (merged over all.py)."""

# Cloud images log in as `debian`; the developer account is that one unless set here.
# user = "debian"
# neovim = {"source": "release"}
