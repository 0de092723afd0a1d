"""Real inference latency: eager, torch.compile, ONNX Runtime and ExecuTorch (docs/latency.md)."""
