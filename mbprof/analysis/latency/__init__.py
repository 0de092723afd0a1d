"""Real inference latency: eager, torch.compile, ONNX Runtime and ExecuTorch, on the CPU or
a GPU.

Rooms: ``stability`` (clocks, blocks of runs, the verdict on a figure), ``machine`` (this
machine: its environment, the settings it can run, its two ceilings), ``runtimes`` (what
every runtime shares; eager and compile), ``onnx_runtime`` (ONNX Runtime), ``lowering`` and
``executorch`` (ExecuTorch), ``harness`` (models timed in interleaved rounds; one model is
the one-job case), ``layers`` and ``roofline`` (where the time goes, per layer). What each
runtime accepts is its row of ``mbprof.core.settings.RUNTIMES``.

What a figure measures (the convention, written where it is computed):
- One *run* is one forward pass of a whole batch, from Python, output included
  (``model(x)``, or ``session.run`` for ONNX Runtime), in ``torch.inference_mode``.
- First ``warmup`` untimed runs (oneDNN / cuDNN pick their kernels there), then
  *blocks* of back-to-back runs, timed as a whole, until at least ``min_time_s``
  seconds are timed and at least ``MIN_BLOCKS`` blocks exist. A block has one run
  unless the clock's own cost would exceed 0.1% of a run (then enough runs to drown it).
- ``latency_ms`` is the median over blocks of (block time / runs in the block);
  ``latency_p10_ms`` / ``latency_p90_ms`` are the 10th / 90th percentiles of the same.
- On the CPU the clock is ``time.perf_counter``; on CUDA every block is bracketed by
  CUDA events and synchronised, so queued GPU work is counted.
- The thread count applies to every backend: torch's intra-op threads (restored
  afterwards) and ONNX Runtime's ``intra_op_num_threads``.
- One-off costs (torch.compile's first call; ONNX export and session creation) are
  reported apart as ``compile_s`` and never enter the latency.
- Every figure carries a verdict, "stable" or "unstable" with its reasons
  (``stability``): its spread (p90 - p10) / median, how many blocks stand behind it, a
  drift between the halves of its runs, and what the machine did while it ran (other
  processes' CPU time, steal time, usable CPUs against threads, the CPU clock).
- Achieved GFLOP/s = 2 x MAdds x batch / latency, MAdds counted by
  ``mbprof.analysis.counting`` (conv + FC multiply-accumulates, the papers' convention);
  the machine share compares it with the best rate of a matrix product (over a few
  sizes) on the same device, threads and dtype (``machine_peak_gflops``, measured once
  and cached; ``machine_bandwidth_gbs`` is the memory ceiling beside it).
"""
