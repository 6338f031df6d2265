"""The Relay object the application calls (relay), admin operations on groups (groups), timed
jobs (jobs), joining from a private web link (links), the Signal account ids of members
enrolled by number (accounts), video sessions (video), and the core's side of the adapters'
contract protocols (relay/doors.py): a channel's inbox (inbox), photos hosted for MMS
(media_host), the web door's seats and copies (web_seats) and joining by link (web_joins).
The top of relay/: it may import every package, and no package imports it.
"""
