"""The HTTP service around the library: CDS Hooks 2.0 cards and a plain JSON API over sessions.

It sits above ``audit`` (a card cites the evidence an auditor reads) and below ``cli`` (``pathway serve``).
"""
