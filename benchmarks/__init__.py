"""Benchmarks: mistral_conv side by side with a raw aiohttp + msgspec floor and the official SDK.

Run ``python -m benchmarks`` (``--smoke`` for a tiny correctness-only run).
"""
