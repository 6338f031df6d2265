"""What is kept and how: the tables (models), the engine, sessions and migrations (engine),
and the keys that seal and hash identifiers at rest (crypto); received SMS waiting for the core
(inbox) and photos hosted briefly for MMS (media_links).
May import: nothing else in relay.
"""
