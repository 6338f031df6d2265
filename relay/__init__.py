"""Cercle's core: members, groups, pseudonyms, consent, commands, policy, outbox and delivery.

The core knows no provider. Adapters in ``bots/`` turn provider payloads into
:class:`relay.messages.Inbound` values and implement :class:`relay.transport.Transport`.
The modules directly here (messages, transport, errors, clock, phone) are that contract;
the sub-packages are layered, each importing only those below it (docs/architecture.md).
"""
