#!/usr/bin/env python3
"""Checks that #include lines under src/ follow the pipeline's layering (docs/architecture.md):
each stage may include only itself and the stages below it, and a backend folder only its own
files and the backend contract. Mirrors the CMake library dependencies; run by `make test`.

Usage: check_layering.py REPO_ROOT   (exit status 1 and one line per violation)"""
import os
import re
import sys

# stage -> stages it may include (besides itself and the public nef/ headers).
ALLOWED = {
    "common": set(),
    "ir": {"common"},
    "devices": {"common"},
    "backends": {"common", "ir", "devices", "backends/*"},  # the contract and the registry
    # One backend: the contract and the shared C-style renderer, never another backend.
    "backends/*": {"common", "ir", "devices", "backends", "backends/cstyle"},
    "runtime": {"common", "ir", "backends"},
    "passes": {"common", "ir"},
    "planner": {"common", "ir", "devices", "backends"},
    "format": {"common", "ir"},
    "compiler": {"common", "ir", "devices", "backends", "passes", "planner", "runtime", "format"},
    "engine": {"common", "ir", "backends", "runtime", "compiler"},
    "api": {"common", "ir", "devices", "backends", "backends/cpu", "runtime", "compiler",
            "engine", "format"},
    "onnx": {"common", "ir", "api", "format", "runtime"},
    # Language models: the tokenizer, the GGUF model and generation over the C++ API.
    "llm": {"common", "ir", "api", "format", "runtime"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def stage_of(path):
    """'backends/cpu/kernels/x.cpp' -> 'backends/cpu'; 'backends/registry.cpp' -> 'backends'."""
    parts = path.split("/")
    if parts[0] == "backends" and len(parts) > 2:
        return "backends/" + parts[1]
    return parts[0]


def allowed(src_stage, dst_stage):
    if dst_stage == src_stage:
        return True
    rules = ALLOWED.get(src_stage) or ALLOWED.get(src_stage.split("/")[0] + "/*", set())
    if dst_stage in rules:
        return True
    if dst_stage.startswith("backends/") and "backends/*" in rules:
        return True
    if src_stage.startswith("backends/") and dst_stage.startswith("backends/"):
        return dst_stage in rules  # a backend reaches only the shared renderer
    return False


def main():
    root = os.path.join(sys.argv[1] if len(sys.argv) > 1 else ".", "src")
    stages = {s for s in ALLOWED if "*" not in s}
    bad = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith((".h", ".cpp")):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            src = stage_of(rel)
            if src.split("/")[0] not in stages:
                bad.append(f"{rel}: folder '{src}' is not a known stage (add it to ALLOWED)")
                continue
            with open(full, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    top = inc.split("/")[0]
                    if top == "nef" or top not in stages:
                        continue  # public headers, generated or third-party headers
                    dst = stage_of(inc)
                    if not allowed(src, dst):
                        bad.append(f"{rel}:{lineno}: {src} must not include {inc} ({dst})")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} layering violation(s); see docs/architecture.md")
        return 1
    print("layering: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
