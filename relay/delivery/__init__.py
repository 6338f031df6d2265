"""Getting rows out of the outbox to phones: writing sealed outbox rows (outbox), claiming due
rows and turning them into jobs (claims), the sender's loop and what it records (sender), its
wake-up bell (bell) and policy (policy), per-channel and per-recipient pacing, the singleton
lease, taking a copy back (recall), and failure reports to staff (reports, reasons).
May import: storage, language and the root modules (messages, transport, errors, clock); it
reaches the service only through ``policy.Service``.
"""
