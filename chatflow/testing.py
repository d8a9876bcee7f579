"""`chatflow.testing`: test a flow as a customer would experience it, on a real Temporal server.

The public face of `chatflow.runtime.testing`; see there.
"""

from chatflow.runtime.testing import FlowTest, dev_server, time_skipping

__all__ = ["FlowTest", "dev_server", "time_skipping"]
