"""The words of the web pages, in the gettext catalogues like every text Cercle shows."""

from __future__ import annotations

from relay.language.i18n import T

PAGE: dict[str, T] = {
    "before": T("Before you join"),
    "agree": T("I have read this and I agree"),
    "remember": T("Remember this device"),
    "remember_help": T(
        "Only on a device that is yours alone and that no one else checks. Otherwise leave "
        "this unchecked: the page forgets you when you close the tab."
    ),
    "bad_link": T(
        "This link does not work. It may have been used already or have expired. Ask the "
        "person who gave it to you for a new one."
    ),
    "exit": T("Quick exit"),
    "exit_help": T("Press Escape at any time to leave this page at once."),
    "messages": T("Messages"),
    "your_message": T("Your message"),
    "send": T("Send"),
    "you": T("You"),
    "refresh": T("Refresh to see new messages"),
    "disappear": T("Messages leave this page when the group's timer passes ({timer})."),
    "disappear_later": T("Messages leave this page when the group's timer passes."),
    "ended": T("This page has ended: you are no longer in the group."),
    "nothing": T("Nothing to show here. If you were in a group, ask a facilitator for a new link."),
    "offline": T("Connection lost. Trying again…"),
    "not_sent": T("Not sent. Please try again."),
    "skip": T("Skip to the message box"),
    "join_video": T("Join the video session (camera and microphone off)"),
}


def page_words(lang: str, **params: object) -> dict[str, str]:
    """Every page text in ``lang``. Without a ``timer`` (the page does not know the seat
    yet), the timer line says no more than it knows; the script fills it in."""
    words = {key: T(text.msgid, **params).render(lang) for key, text in PAGE.items()}
    if not params.get("timer"):
        words["disappear"] = words["disappear_later"]
    return words
