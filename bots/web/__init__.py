"""The web door: members who join from a private link, in a browser, with no app and no number.

Modules: ``config`` (WebConfig), ``client`` (the client's address behind trusted proxies),
``transport`` (WebTransport, the core's transport protocol over the seats and copies the core
keeps: :class:`relay.doors.WebSeats`), ``hub`` (wakes connected browsers when copies arrive,
across processes), ``limits`` (in-memory rate limits), ``texts`` (the page's words, both
languages), ``photos`` and ``photo_routes`` (photos sent and shown on the page) and
``routes`` (the Starlette routes: ``/j/<token>`` to join, ``/c`` to chat). The door reaches the
core only through :mod:`relay.doors`: ``accept`` for what members send, ``WebJoins`` to join
by link, ``WebSeats`` for seats and copies, ``CleanPhoto`` for photos.

To the core a web member is a member on channel ``web`` with an opaque address (a random
seat id). The browser proves it holds the seat with a random bearer token, kept on the server
only as a keyed hash.
"""
