"""The Relay object adapters and the application call (relay), admin operations on groups
(groups), timed jobs (jobs), joining from a private web link (links), and the Signal account
ids of members enrolled by number (accounts). The top of relay/: it may import every package, and no
package imports it.
"""
