"""What the real upstreams publish, read from their repositories and release pages (November 2026).

Stand-ins are built from these facts and defaults are checked against them, so a default that only
a stand-in has seen cannot pass. Update this file from the upstream itself, never from a stand-in.
"""

from __future__ import annotations

# Every tag of each neovim plugin kdevbox installs, oldest first, spelled as upstream spells it.
UPSTREAM_TAGS: dict[str, tuple[str, ...]] = {
    "plenary.nvim": ("v0.1.0", "v0.1.1", "v0.1.2", "v0.1.3", "v0.1.4"),
    "telescope.nvim": (
        "nvim-0.5.0",
        "nvim-0.5.1",
        "nvim-0.6",
        "0.1.0",
        "0.1.1",
        "0.1.2",
        "0.1.3",
        "0.1.4",
        "0.1.5",
        "0.1.6",
        "0.1.7",
        "0.1.8",
        "v0.1.9",
        "v0.2.0",
        "v0.2.1",
        "v0.2.2",
    ),
    "telescope-heading.nvim": ("v0.1.0", "v0.2.0", "v0.3.0", "v0.4.0", "v0.5.0", "v0.6.0", "v0.7.0"),
    "tree-sitter-rst": ("v0.1.0", "v0.2.0"),
}
UPSTREAM_URLS: dict[str, str] = {
    "plenary.nvim": "https://github.com/nvim-lua/plenary.nvim",
    "telescope.nvim": "https://github.com/nvim-telescope/telescope.nvim",
    "telescope-heading.nvim": "https://github.com/crispgm/telescope-heading.nvim",
    "tree-sitter-rst": "https://github.com/stsewd/tree-sitter-rst",
}
UPSTREAM_DEFAULT_BRANCHES: dict[str, str] = {
    "plenary.nvim": "master",
    "telescope.nvim": "master",
    "telescope-heading.nvim": "main",
    "tree-sitter-rst": "master",
}
# Commits kdevbox pins by hash, each the head of its repository's default branch (date, what it has
# that no tag has): telescope-heading's last tag, v0.7.0 (2022), calls vim.treesitter.parse_query,
# which neovim 0.11 removed; its branch head uses vim.treesitter.query.parse when neovim has it.
UPSTREAM_PINNED_HEADS: dict[str, str] = {
    "telescope-heading.nvim": "e85c0f69cb64048f56e76548dcb2f10277576df9",  # 2024-06-11
}
# tree-sitter-rst's layout: what a parser is built from (cc -shared -fPIC -I src), at v0.2.0.
TREE_SITTER_RST_SOURCES = ("src/parser.c", "src/scanner.c", "src/tree_sitter/parser.h")
# The neovim release asset for Linux x86_64: its name changed in v0.10.4.
NEOVIM_ASSET_SINCE_0_10_4 = "nvim-linux-x86_64.tar.gz"
NEOVIM_TOP_DIR_SINCE_0_10_4 = "nvim-linux-x86_64"
NEOVIM_RELEASE_URL = "https://github.com/neovim/neovim/releases/download/v{version}/{asset}"
KERNEL_RELEASES_JSON = "https://www.kernel.org/releases.json"
KERNEL_STABLE_GIT = "https://git.kernel.org/pub/scm/linux/kernel/git/stable/linux.git"
