"""Survivor safety and moderation limits on the inbound path: quick exit and what is checked
first (quick_exit), alerts to staff (alerting, with the phrases in alerts), messages held
outside open hours or for a decision (held) and the decision on them (decisions), pause, mute
and flood holds (limits, flood), the deny list (bans); what the guards see of a message's turn
is in protocols. May import: groups, core, delivery, storage, language, root modules.
"""
