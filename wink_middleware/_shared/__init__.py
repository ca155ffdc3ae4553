"""The shared tier: a Redis-backed cache and single-flight shared by a fleet of processes.

The entry and envelope formats and the tier's rules are sans-IO; the async and sync twins move
bytes to and from Redis.
"""
