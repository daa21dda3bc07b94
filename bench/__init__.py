"""Benchmarks: vix-breaker against the seed's protocol, on the same real server, in one run (``make bench``)."""
