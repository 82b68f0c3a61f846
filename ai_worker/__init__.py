"""ai-worker: runs the AI jobs of the education platform from SQS tier queues.

At-least-once delivery: every handler must be idempotent, and results are written once per job.
"""

__version__ = "0.1.0"
