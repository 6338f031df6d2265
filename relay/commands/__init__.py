"""The slash commands: one module per family (members, moderation, facilitation,
message_moderation), each handler registering its row with ``@command``; ``table`` imports the
families and does the lookups.
May import: safety, groups, core, storage, language. Never inbound or service.
"""
