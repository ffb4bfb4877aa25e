"""Ops whose output shape depends on the input values (docs/ops.md, "Value-dependent shapes").

Over data they run their inputs at once and return a tensor of the true shape (a segment
boundary: what follows is planned against it). Over placeholders the extent stays unknown until
the built graph runs: `nef.build` / `LoadedGraph.run` / `nef run` then execute the graph in
segments, each compiled and cached like any graph.
"""

from __future__ import annotations

import builtins

from .ops import _op, gather, reshape
from .tensor import Tensor, _index_arg


def nonzero(x) -> Tensor:
    """The indices of x's nonzero elements as one int64 [x.ndim, n] tensor, column j holding
    the j-th nonzero element's index in C order (numpy.array(numpy.nonzero(x)))."""
    return _op("nonzero", [x])


def _column(t, c: int) -> Tensor:
    return _op("squeeze", [_op("slice", [t], starts=[0, c], stops=[2**62, c + 1],
                                steps=[1, 1])], axes=[1])


def unique(x, axis=None, sorted: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(values, first_indices, inverse, counts) like numpy.unique with return_index,
    return_inverse and return_counts: without an axis over the flattened x; with one, over its
    slices along that axis. sorted=False keeps the order of first occurrence."""
    if axis is None:
        # (a 1-d x is used as it is: a reshape of a value-shaped result would fix its extent)
        x = x if getattr(x, "ndim", None) == 1 else reshape(x, (-1,))
        axis = 0
    ax = _index_arg(axis, "axis", "unique")
    s = builtins.bool(sorted)
    packed = _op("unique", [x], axis=ax, sorted=s)
    first = _column(packed, 0)
    return gather(x, first, ax), first, _op("unique_inverse", [x], axis=ax, sorted=s), \
        _column(packed, 1)


def non_max_suppression(boxes, scores, max_output_boxes_per_class: int = 0,
                        iou_threshold: float = 0.0, score_threshold: float | None = None,
                        center_point_box: int = 0) -> Tensor:
    """ONNX NonMaxSuppression: boxes [B, N, 4], scores [B, C, N] (float32) -> int64 [k, 3] rows
    (batch, class, box) of the boxes kept per (batch, class), best score first, at most
    max_output_boxes_per_class each; a box is dropped when its IoU with a kept one exceeds
    iou_threshold, or its score is not above score_threshold."""
    attrs = dict(center_point_box=_index_arg(center_point_box, "center_point_box", "nms"),
                 max_output=_index_arg(max_output_boxes_per_class, "max_output", "nms"),
                 iou_threshold=float(iou_threshold))
    if score_threshold is not None:
        attrs.update(score_threshold=float(score_threshold), has_score_threshold=True)
    return _op("non_max_suppression", [boxes, scores], **attrs)
