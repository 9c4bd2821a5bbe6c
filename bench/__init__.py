"""Benchmarks (not installed): the software model beside QEMU's real device, in one run.

Run ``python3 -m bench.run`` from the repository root; see :mod:`bench.run`.
"""
