"""Fault tests: kill -9, SIGTERM drain, time/memory limits, crashes, poison and retried messages."""
