"""Benchmarks: scripts that measure biodecode (and, where there is one, the peer) in one run."""
