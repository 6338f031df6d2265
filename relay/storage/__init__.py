"""What is kept and how: the tables (models), the engine, sessions and migrations (engine),
and the keys that seal and hash identifiers at rest (crypto).
May import: nothing else in relay.
"""
