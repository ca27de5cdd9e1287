#!/usr/bin/env python3
"""Checks the module layering of docs/ARCHITECTURE.md: every `crate::…` / `super::…` path in
src/ (outside `#[cfg(test)]` code) must name a module of a lower layer, or one of its own unit
(a folder that is one room, such as `http` or `whatsapp::real`). Prints each violation and
exits 1 if there is any. Run: python3 .ci/layers.py"""

import pathlib
import re
import sys

# Lowest first. A module may import modules of a strictly lower layer, and its own unit.
LAYERS = [
    ["ids", "time"],
    ["error", "metrics", "locks", "config"],
    ["text", "logging", "webhooks::guard", "media"],
    ["db"],
    ["tenancy"],
    ["chat", "auth::users", "auth::password", "auth::token", "auth::rate_limit", "auth::keys", "whatsapp"],
    ["media::store"],
    ["chat::store", "chat::library", "chat::mentions", "auth::cache", "whatsapp::real", "whatsapp::simulated"],
    ["events", "chat::search"],
    ["realtime", "webhooks"],
    ["chat::outbox", "whatsapp::sessions", "auth", "auth::signup", "webhooks::store", "media::fetch"],
    ["chat::inbox", "chat::ingest", "chat::snooze", "ops", "webhooks::deliver"],
    ["chat::workflow"],
    ["state"],
    ["http", "bench", "testing"],
    ["startup", "cli"],
    ["lib"],
]
RANK = {module: rank for rank, modules in enumerate(LAYERS) for module in modules}
# Folders whose files may use each other freely: one room of the house.
UNITS = ["http", "whatsapp::real", "ops"]

src = pathlib.Path(__file__).resolve().parent.parent / "src"


def module_of(path):
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts == ["lib"] or parts == ["main"]:
        return "lib"
    return "::".join(parts)


def placed(module):
    """The layer entry a module path belongs to: its longest listed prefix."""
    parts = module.split("::")
    for n in range(len(parts), 0, -1):
        candidate = "::".join(parts[:n])
        if candidate in RANK:
            return candidate
    return None


def unit(module):
    for u in UNITS:
        if module == u or module.startswith(u + "::"):
            return u
    return module


def targets(text, module, is_folder):
    """The module paths a file's `crate::` and `super::` paths name."""
    for m in re.finditer(r"\bcrate((?:::\w+)+)", text):
        yield m.group(1)[2:]
    for m in re.finditer(r"\buse\s+super((?:::\w+)*)(::\{|;|::\*)", text):
        parent = module.split("::")
        if not is_folder:
            parent = parent[:-1]
        rest = m.group(1)[2:]
        yield "::".join(parent + ([rest] if rest else []))


violations = []
for path in sorted(src.rglob("*.rs")):
    module = module_of(path)
    text = path.read_text()
    text = text.split("#[cfg(test)]")[0]
    # Comments (doc links included) name modules without depending on them.
    text = "\n".join(line.split("//")[0] for line in text.splitlines())
    own = placed(module)
    if own is None:
        violations.append(f"{path}: module `{module}` is not in the layer map")
        continue
    for target in targets(text, module, path.name == "mod.rs"):
        entry = placed(target)
        if entry is None or unit(entry) == unit(own) or entry == own:
            continue
        if RANK[entry] >= RANK[own]:
            violations.append(
                f"{path.relative_to(src.parent)}: `{module}` (layer {RANK[own]}) uses "
                f"`{target}` (layer {RANK[entry]})")

for v in violations:
    print(v)
print(f"layers: {len(violations)} violation(s)")
sys.exit(1 if violations else 0)
