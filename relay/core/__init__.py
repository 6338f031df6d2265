"""What every handler shares: the outcome it returns (outcome), the context it reads and the
command registry it registers into (handlers), and the words people type (words).
May import: delivery, storage, language, clock. The service is seen as ``outcome.Service``.
"""
