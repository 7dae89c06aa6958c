"""Written by kdevbox: refuse an empty or partial compile_commands.json before it replaces a good one.

Usage: python3 check_compile_commands.py DATABASE SOURCE_DIR BUILD_DIR
Every C file of the tree Kbuild compiled (a .o with a .cmd record and a .c beside it in the source;
tools/ builds on its own) must have an entry, and every entry's file must exist: Bear on an
already-built tree, for one, records nothing.
"""

import json
import os
import sys

database, source, build = sys.argv[1], sys.argv[2], sys.argv[3]
with open(database) as f:
    entries = json.load(f)
if not entries:
    sys.exit(f"{database} is empty: nothing was compiled while it was recorded")
files = set()
for entry in entries:
    path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
    if not os.path.exists(path):
        sys.exit(f"{database} lists {path}, which does not exist")
    files.add(path)
compiled = set()
for folder, dirs, names in os.walk(build):
    if os.path.relpath(folder, build) == ".":
        dirs[:] = [d for d in dirs if d != "tools"]  # host tools (objtool) build outside Kbuild
    for name in names:
        if name.startswith(".") and name.endswith(".o.cmd"):
            rel = os.path.relpath(os.path.join(folder, name[1 : -len(".o.cmd")] + ".c"), build)
            if os.path.exists(os.path.join(source, rel)):
                compiled.add(os.path.normpath(os.path.join(source, rel)))
missing = sorted(compiled - {os.path.realpath(f) for f in files} - files)
if missing:
    sys.exit(
        f"{database} lacks {len(missing)} of the {len(compiled)} C files built, e.g. {missing[0]}: partial"
    )
print(f"{database}: {len(entries)} entries, every one of the {len(compiled)} C files built")
