"""Forgetting on time and changing keys: retention purges (retention) and key rotation
(rotation). May import: safety, delivery, storage and the root modules.
"""
