"""Group life: open hours and sessions (schedule), invite codes and joining (invites), and
per-group policy with its tallies and held messages (policy).
May import: core, delivery, storage, language and the root modules.
"""
