"""The README's quick start, verbatim, plus what happened under the hood."""
import os
import tempfile

import nef

a = nef.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=nef.float32)
b = nef.tensor([[5.0, 6.0], [7.0, 8.0]], dtype=nef.float32)

c = nef.matmul(a, b)   # <- no execution yet. graph node created.
c.execute()            # <- optimizer -> planner -> compiler -> hardware. done.
print("matmul:", c)

a = nef.tensor([1, 2, 3])
b = nef.tensor([4, 5, 6])
c = nef.matmul(a, b)    # -> DAG node added. Nothing ran.
d = nef.softmax(c)      # -> DAG node added. Nothing ran.
print("dot:", c, " softmax:", d)

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "model.nef")
    a = nef.tensor([[1.0]], dtype=nef.float32)
    b = nef.tensor([[2.0]], dtype=nef.float32)
    nef.matmul(a, b).build(path)
    print("built", path, os.path.getsize(path), "bytes ->", nef.load(path).run({})["output"])

print("stats:", nef.stats())
