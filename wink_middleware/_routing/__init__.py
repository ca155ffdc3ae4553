"""Routing: what one request asks for, decided without I/O and without the engine.

The request view an adapter fills, the path policy, the token extractor and the RFC 6750 answers.
"""
