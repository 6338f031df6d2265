"""What every handler shares: the outcome it returns (outcome), the context it reads and the
command registry it registers into (handlers), the words people type (words), and who acts
for the organization in the audit trail (actor).
May import: delivery, storage, language, clock. The service is seen as ``outcome.Service``.
"""
