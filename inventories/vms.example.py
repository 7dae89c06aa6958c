"""VMs and lab machines over SSH, provisioned in parallel. Copy to inventories/vms.py and edit:

    pyinfra inventories/vms.py deploys/devbox.py
    pytest --pyargs kdevbox.verify --inventory inventories/vms.py

Each list is a group: settings for every host of a group go in group_data/<group>.py (see
group_data/lab.py and group_data/cloud.py), for one host in its dict here. You log in as yourself
and kdevbox escalates with sudo where it must (`_sudo`); your files are written as you.
"""

# Machines in the lab: one account per developer, passwordless sudo.
lab = [
    ("kbuild1.lab.example.org", {"ssh_user": "alice", "_sudo": True}),
    ("kbuild2.lab.example.org", {"ssh_user": "alice", "_sudo": True}),
    # A host whose sudo asks for a password: pyinfra asks once (`--use-sudo-password`).
    ("arm64-box.lab.example.org", {"ssh_user": "alice", "_sudo": True, "clangd": {"package": "clangd-16"}}),
]

# Cloud VMs: the image's default user, a non-standard SSH port, a key of their own.
cloud = [
    (
        "kvm-runner.cloud.example.org",
        {"ssh_user": "debian", "ssh_port": 2222, "ssh_key": "~/.ssh/cloud_ed25519", "_sudo": True},
    ),
]
