"""``cercle staff``: accounts for the console, created and recovered from the command line."""

from __future__ import annotations

import json

from tests.cli_support import invoke


def setup_link(output: str) -> str:
    return next(w for w in output.split() if "/staff/setup/" in w)


def test_adding_staff_prints_a_one_time_setup_link(env: dict[str, str]) -> None:
    code, output = invoke("staff", "add", "marie", "--role", "admin")

    assert code == 0, output
    link = setup_link(output)
    assert link.startswith("https://relay.example.org/staff/setup/") and len(link) > 70
    assert "24 h" in output
    code, output = invoke("staff", "list", "--json")
    assert json.loads(output) == [
        {"name": "marie", "role": "admin", "lang": "fr", "passkeys": 0, "setup_link_live": True}
    ]


def test_a_recovery_link_is_a_new_link(env: dict[str, str]) -> None:
    _, first = invoke("staff", "add", "sam")

    code, second = invoke("staff", "link", "sam")

    assert code == 0 and setup_link(second) != setup_link(first)


def test_names_are_checked_and_unique(env: dict[str, str]) -> None:
    invoke("staff", "add", "sam")

    assert invoke("staff", "add", "sam")[0] == 1
    code, output = invoke("staff", "add", "Sam Smith")
    assert code == 1 and "lower-case" in output


def test_removing_staff_deletes_the_account(env: dict[str, str]) -> None:
    invoke("staff", "add", "sam")

    assert invoke("staff", "remove", "sam")[0] == 0
    assert json.loads(invoke("staff", "list", "--json")[1]) == []
    assert invoke("staff", "link", "sam")[0] == 1
