"""The in-process loopback transport, for the sandbox and for tests."""
