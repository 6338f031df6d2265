"""What a member is told when their place ends, in the words true for their channel.

A member on Signal or SMS is reached at their number; a member who joined from a web link has
no number, only a key their browser holds. Each text here names what is really deleted.
"""

from __future__ import annotations

from relay.language.channels import PerChannel
from relay.language.i18n import T

WEB = "web"


def left() -> PerChannel:
    """After ``/leave`` is confirmed."""
    return PerChannel(
        T(
            "You have left the group. Your number and your data "
            "have been deleted. Take care of yourself."
        ),
        {
            WEB: T(
                "You have left the group. Your key to this page and your data have been "
                "deleted. Take care of yourself."
            )
        },
    )


def removed_by_facilitator() -> PerChannel:
    """A facilitator's ``/remove`` or ``/ban``."""
    return PerChannel(
        T(
            "A facilitator has removed you from the group. Your number and your data have "
            "been deleted."
        ),
        {
            WEB: T(
                "A facilitator has removed you from the group. Your key to this page and your "
                "data have been deleted."
            )
        },
    )


def removed_by_organization() -> PerChannel:
    """An admin's removal, or the deny list."""
    return PerChannel(
        T(
            "The organization has removed you from the group. Your number and your data have "
            "been deleted."
        ),
        {
            WEB: T(
                "The organization has removed you from the group. Your key to this page and "
                "your data have been deleted."
            )
        },
    )


def not_admitted() -> PerChannel:
    """A facilitator did not approve a join."""
    return PerChannel(
        T("Your request was not accepted. Your number has been deleted."),
        {WEB: T("Your request was not accepted. Your key to this page has been deleted.")},
    )


def group_closed() -> PerChannel:
    """The group ends for everyone (resources follow)."""
    return PerChannel(
        T(
            "This group is now closed. Thank you for being part of it. "
            "Your number and your data have been deleted."
        ),
        {
            WEB: T(
                "This group is now closed. Thank you for being part of it. Your key to this page "
                "and your data have been deleted."
            )
        },
    )
