"""The Relay object adapters and the application call (relay), admin operations on groups
(groups) and timed jobs (jobs). The top of relay/: it may import every package, and no
package imports it.
"""
