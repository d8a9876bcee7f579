"""`chatflow.testing`: test a flow as a customer would experience it, on a real Temporal server.

The public face of `chatflow.temporal.testing`; see there.
"""

from chatflow.temporal.testing import FlowTest, dev_server, time_skipping

__all__ = ["FlowTest", "dev_server", "time_skipping"]
