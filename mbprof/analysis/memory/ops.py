"""The per-op rules of the memory analysis, by aten name; a new op kind is taught here."""

from __future__ import annotations

import functools

import torch

# Element-wise ops that torch does not tag as pointwise.
ELEMENTWISE_EXTRA = frozenset(
    {"hardswish", "hardswish_", "gelu_", "hardshrink", "softshrink", "prelu", "_prelu_kernel"}
)
BATCH_NORM = frozenset(
    (
        "native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training batch_norm "
        "cudnn_batch_norm miopen_batch_norm _batch_norm_impl_index"
    ).split()
)
# Ops whose other arguments the trace keeps (``Node.args``): by them the dispatch engine
# (``counting``) tells eval batch norm, affine norms and adaptive pooling's mean apart.
ARGS_KEPT = BATCH_NORM | {"native_group_norm", "native_layer_norm", "mean"}
CONV = frozenset({"convolution", "_convolution", "conv2d", "conv1d", "conv3d"})
PAD = frozenset({"constant_pad_nd", "reflection_pad2d", "replication_pad2d", "pad"})
ALIAS = frozenset(
    {"view", "_unsafe_view", "reshape", "alias", "detach", "expand", "_reshape_alias", "clone"}
)
# Reductions that, over the spatial dims, leave one value per channel (global pooling).
REDUCE = frozenset(
    (
        "mean sum amax amin max avg_pool2d _adaptive_avg_pool2d adaptive_avg_pool2d "
        "adaptive_max_pool2d max_pool2d_with_indices max_pool2d"
    ).split()
)
# Float -> float element-wise ops whose output is shaped and laid out like their input.
SAME_AS_INPUT = frozenset(
    (
        "relu relu6 hardtanh hardswish hardsigmoid sigmoid silu gelu elu leaky_relu tanh clamp "
        "clamp_min clamp_max mish softplus neg"
    ).split()
)


@functools.cache
def op_info(func: torch._ops.OpOverload) -> tuple[str, bool]:
    """An op's aten name and whether it is element-wise, looked up once per op."""
    name = func._schema.name.split("::")[-1]
    return name, torch.Tag.pointwise in func.tags or name in BATCH_NORM | ELEMENTWISE_EXTRA


def shortcut(func: torch._ops.OpOverload, args: tuple, kwargs: dict) -> object | None:
    """The meta output of the commonest ops without their Python meta kernels, or None."""
    name = op_info(func)[0]
    if name == "cat" and not kwargs and args and type(args[0]) in (list, tuple):
        return _cat(args[0], args[1] if len(args) > 1 else 0)
    first = args[0] if args else None
    if not isinstance(first, torch.Tensor) or not first.is_floating_point():
        return None
    if name == "convolution":
        return _convolution(args, kwargs)
    if name in ("addmm", "mm") and not kwargs:
        a, b = args[-2:] if name == "addmm" else args[:2]
        fits = a.dim() == b.dim() == 2 and a.dtype == b.dtype == first.dtype
        return a.new_empty((a.shape[0], b.shape[1])) if fits else None
    if name == "_native_batch_norm_legit_no_training" or (
        name == "native_batch_norm" and len(args) > 5 and not args[5]
    ):
        stats = (first.shape[1] if first.dim() > 1 else 0,) if name == "native_batch_norm" else (0,)
        return _like(first), first.new_empty(stats), first.new_empty(stats)
    if name == "mean" and not kwargs and len(args) in (2, 3) and args[1]:
        rank, keep = first.dim(), len(args) == 3 and args[2]
        dims = {d % rank for d in args[1] if -rank <= d < rank}
        if len(dims) != len(args[1]):
            return None  # the meta kernel says why
        shape = [1 if i in dims else n for i, n in enumerate(first.shape) if keep or i not in dims]
        return first.new_empty(shape)
    if name in ("max_pool2d_with_indices", "avg_pool2d") and not kwargs and first.dim() == 4:
        return _pool(name, args) if first.is_contiguous() else None
    base = name[:-1] if name.endswith("_") else name
    others = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, torch.Tensor)]
    if base in ("add", "mul", "sub", "div") and len(others) == 1:
        other = others[0]
        if other.shape == first.shape:
            fits = other.stride() == first.stride()
        else:  # broadcast to ``first`` (squeeze-and-excite's scale): laid out like ``first``
            tail = first.shape[first.dim() - other.dim() :]
            fits = other.dim() <= first.dim() and all(
                o in (1, f) for o, f in zip(other.shape, tail, strict=True)
            )
        if other.dtype != first.dtype or not fits:
            return None
    elif base not in SAME_AS_INPUT or others:
        return None
    if name.endswith("_"):
        return first  # in place: the op returns its input
    return None if "out" in kwargs else _like(first)


def _like(tensor: torch.Tensor) -> torch.Tensor:
    """``empty_like``, without its Python meta kernel for the common contiguous case."""
    if tensor.is_contiguous():
        return torch.empty(tensor.shape, dtype=tensor.dtype, device=tensor.device)
    return torch.empty_like(tensor)


def _cat(tensors: list, dim: int) -> torch.Tensor | None:
    """Contiguous float tensors of one dtype and rank joined along ``dim``."""
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        return None
    head, rank = tensors[0], tensors[0].dim()
    if not -rank <= dim < rank:
        return None
    dim %= rank
    rest = {(t.dtype, t.dim(), *t.shape[:dim], *t.shape[dim + 1 :]) for t in tensors}
    if len(rest) != 1 or not all(t.is_floating_point() and t.is_contiguous() for t in tensors):
        return None
    joined = sum(t.shape[dim] for t in tensors)
    return head.new_empty((*head.shape[:dim], joined, *head.shape[dim + 1 :]))


def _pool(name: str, args: tuple) -> object | None:
    """max_pool2d_with_indices' output and indices, or avg_pool2d's output (NCHW, contiguous)."""
    x, pooled, given = args[0], name.startswith("max"), [*args[1:], None, None, None, None]
    # kernel, stride ([]: the kernel's), padding, then max's dilation and ceil_mode or avg's
    # ceil_mode; each size one number for both sides or two
    sides = (given[0], given[1] or given[0], given[2] or [0], pooled and given[3] or [1])
    if any(len(v) not in (1, 2) for v in sides):
        return None
    kernel, stride, padding, dilation = ([*v] * (3 - len(v)) for v in sides)
    ceil = bool(given[4] if pooled else given[3])
    windows = zip(kernel, padding, dilation, strict=True)
    too_wide = any(p < 0 or 2 * p > d * (k - 1) + 1 for k, p, d in windows)
    if min(kernel + stride + dilation) < 1 or too_wide:
        return None  # the meta kernel says why
    sizes = []
    for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation, strict=True):
        out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
        sizes.append(out - 1 if ceil and (out - 1) * s >= n + p else out)
    if min(sizes) < 1:
        return None  # the meta kernel says why
    out = x.new_empty((*x.shape[:2], *sizes))
    return (out, x.new_empty(out.shape, dtype=torch.int64)) if pooled else out


def _convolution(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """A plain convolution's output, or None where the meta kernel must decide."""
    if kwargs or len(args) != 9 or args[6]:
        return None
    x, weight, bias, stride, padding, dilation = args[:6]
    spatial = x.dim() - 2
    if (
        weight.dim() != x.dim()
        or weight.dtype != x.dtype
        or not (x.is_contiguous() and weight.is_contiguous())
        or not len(stride) == len(padding) == len(dilation) == spatial
        or x.shape[1] != weight.shape[1] * int(args[8])
        or (bias is not None and tuple(bias.shape) != (weight.shape[0],))
    ):
        return None
    sides = zip(x.shape[2:], weight.shape[2:], stride, padding, dilation, strict=True)  # checked
    sizes = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in sides]
    if spatial < 1 or min(sizes) < 1:
        return None
    return torch.empty((x.shape[0], weight.shape[0], *sizes), dtype=x.dtype, device=x.device)
