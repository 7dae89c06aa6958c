"""Settings for hosts in the `lab` group of inventories/vms.example.py (merged over all.py)."""

# The lab reaches the internet through a proxy; the local mirror is reached directly.
# apt_proxy = {"http": "http://proxy.lab.example.org:3128", "no_proxy": ["mirror.lab.example.org"]}
