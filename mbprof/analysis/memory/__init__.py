"""Activation memory of one forward pass, from the traced graph.

Rooms: ``ops`` (per-op rules), ``graph`` (the traced graph), ``trace`` (recording it on the
meta device), ``blocks`` (chunkable blocks), ``schedules`` (eager, materialized, efficient),
``liveness`` (live bytes, peak, per-size table), ``report`` (the ``MemoryReport``),
``measured`` (a real forward pass, to check the analysis against).

How the graph is traced: the model runs once on the meta device (shapes only, no data, no
arithmetic) under a TorchDispatchMode that records every aten op with its input and output
tensors, the storage each tensor lives in and the module that ran it. Views and in-place ops
share their input's storage, so they add nothing; a storage is one buffer, counted once.
A model that cannot run on the meta device (data-dependent control flow, ``.item()``,
CPU-only ops) cannot be analysed: ``MbprofError`` says so.

What a byte counts: every floating-point activation element costs the chosen dtype's size
(fp16 and bf16 2 bytes, fp32 4, int8 1), whatever the model computes in; integer tensors
(max-pool indices) keep their own size. Parameters and buffers are not activations. The input
image is not counted anywhere (it is the caller's buffer; ``input_bytes`` gives its size), so
the stem's input is left out of its op. KB = 1000 bytes (``mbprof.core.units``).

Liveness: a buffer is alive from the op that creates it to its last use by a later op (the
model's outputs to the end). At each op, live bytes = its inputs + its outputs + tensors held
for later (residual shortcuts, concatenation branches) + any internal buffer; the peak is the
largest over all ops, and the op where it happens is reported.

Three modes, one trace:
- eager: op by op as eager PyTorch allocates (batch norm writes a new tensor), each buffer
  freed after its last use. The real-run check (``measured``) compares against this.
- materialized (the headline, ``peak``): as a deployed graph runs, conv + batch norm +
  activation as one layer: an element-wise op with one activation input (batch norm,
  ReLU6, hard-swish, ...) writes over that input when nothing uses it afterwards. Binary ops
  (residual add, SE gating, concatenation) write a new tensor. Side outputs nobody reads
  (max-pool indices, batch-norm statistics) are not counted.
- memory-efficient (``peak_efficient``), the MobileNetV2 paper's section 5.1: a chunkable
  block (found by its structure, not its class name; see ``find_blocks``) runs as one op that
  computes its expanded tensor in T chunks of channels and accumulates the projection, so it
  needs |input| + |output| + one chunk, ceil(C / T) channels of the largest inner tensor.
  ``chunks=None`` means one channel per chunk (T = C, the paper's limit, which its Table 3
  assumes). Since the stem is a widening conv, a first block without an expansion conv
  (MobileNetV2's t = 1 block) fuses with the stem, so the stem's 32 x 112 x 112 output is
  never whole.
"""

from mbprof.analysis.memory.report import Analysis, analyze, analyze_memory, check_input_shape

__all__ = ["Analysis", "analyze", "analyze_memory", "check_input_shape"]
