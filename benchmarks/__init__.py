"""Benchmarks of queuekit and its peers; `make bench` runs them (see benchmarks/README.md)."""
