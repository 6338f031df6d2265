"""One message's way through the relay (pipeline): identify, state events, guards, consent,
command or relaying, edits, outcome applied (apply), with the photo and mention clean-up.
May import every package except privacy and service; it sees the service as a protocol.
"""
