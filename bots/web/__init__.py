"""The web door: members who join from a private link, in a browser, with no app and no number.

Modules: ``config`` (WebConfig), ``store`` (seats and the sealed copies waiting for browsers),
``transport`` (WebTransport, the core's transport protocol over that store), ``hub`` (wakes
connected browsers when copies arrive, across processes), ``limits`` (in-memory rate limits),
``texts`` (the page's words, both languages), ``pages`` (Jinja2 rendering) and ``routes``
(the Starlette routes: ``/j/<token>`` to join, ``/c`` to chat).

To the core a web member is a member on channel ``web`` with an opaque address (a random
seat id). The browser proves it holds the seat with a random bearer token, kept on the server
only as a keyed hash.
"""
