"""Words and texts: gettext translations (i18n), the organization's configurable texts,
durations in words, and pseudonyms with the names they are drawn from.
May import: the root modules (errors). Nothing else in relay.
"""
