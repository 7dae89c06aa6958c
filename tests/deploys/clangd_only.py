"""Only the clangd capability (clangd, its config, and compiledb with compile_db: compiledb): for
kernel tests of the compiledb recorder and of clangd on a built kernel tree."""

from kdevbox.target import current_target
from kdevbox.tasks.clangd import clangd_setup

target = current_target()
clangd_setup(target.config.clangd, target)
