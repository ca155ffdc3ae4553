"""The engine: verifying a token against Wink, with the profile cache, resilience and stats.

The core decides without I/O; the async and sync verifiers only move bytes and wait. Only
``client`` imports the HTTP library.
"""
