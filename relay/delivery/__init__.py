"""Getting rows out of the outbox to phones: writing sealed outbox rows (outbox), the sender
with its claims and retries (sender), per-channel pacing, the singleton lease, and failure
reports to staff (reports, reasons). May import: storage, language and the root modules
(messages, transport, errors, clock); it reaches the service only through ``policy.Service``.
"""
