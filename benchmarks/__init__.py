"""Speed benchmarks, apart from the studies: tensorgrad against hand-written numpy and PyTorch.

Run from the repository root (`python -m benchmarks.benchmark`). Nothing in tensorgrad/, models/
or experiments/ imports this package (tests/benchmarks/test_isolation.py checks it).
"""
