"""Survivor safety and moderation limits: quick exit, alerts, open hours and
pre-moderation on the inbound path (guards), pause, mute and flood holds (limits, flood),
the deny list (bans). May import: groups, core, delivery, storage, language, root modules.
"""
