"""The data key: does ``CERCLE_DATA_KEY`` open what is stored? Also checked synchronously at
start-up (:func:`require_data_key`): a valid but *wrong* key would otherwise start fine and make
every member a stranger."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import Engine, LargeBinary, func, inspect, literal, select
from sqlmodel import Session, SQLModel

from cercle.settings import SettingsError
from relay.language.i18n import TN, T
from relay.privacy.rotation import SEALED
from relay.storage.crypto import KID_LEN, KID_OFFSET, DataKeyError, DataKeys

if TYPE_CHECKING:
    pass
from cercle.health.finding import Finding

log = logging.getLogger(__name__)


SAMPLE = 3  # sealed values tried per column: enough to tell a wrong key, cheap at start-up


WRONG_KEY_FIX = T(
    "Set CERCLE_DATA_KEY to the key this database was sealed with (from your secret store or "
    "your key backup). If you are changing keys, set the new key as CERCLE_DATA_KEY and the "
    "old one as CERCLE_DATA_KEY_PREVIOUS, then run `cercle keys rotate` (docs/keys.md)."
)


class WrongDataKeyError(SettingsError):
    """``CERCLE_DATA_KEY`` is well-formed but does not open the stored data."""


def _kid(column: object) -> object:
    return func.substr(column, KID_OFFSET + 1, KID_LEN, type_=LargeBinary)


def check_data_key(engine: Engine, keys: DataKeys, *, sample: int = SAMPLE) -> Finding:
    """Whether ``keys`` open what is stored: the newest few values of every sealed column are
    unsealed, and every sealed value's key id is counted (no other row is decrypted).

    Fails when values are stored and none of those tried opens: the key is valid but wrong.
    Reads only; safe before migrations (missing tables and columns are passed over).
    """
    found = inspect(engine)
    tables = set(found.get_table_names())
    total = current = previous = tried = opened = 0
    with Session(engine) as s:
        for sealed in SEALED:
            if sealed.table not in tables:
                continue
            if sealed.column not in {c["name"] for c in found.get_columns(sealed.table)}:
                continue
            t = SQLModel.metadata.tables[sealed.table]
            column = t.c[sealed.column]
            pk = next(iter(t.primary_key.columns))
            present = column.is_not(None)
            total += s.execute(select(func.count()).select_from(t).where(present)).scalar_one()
            current += s.execute(
                select(func.count())
                .select_from(t)
                .where(present, _kid(column) == literal(keys.key_id, LargeBinary))
            ).scalar_one()
            if keys.previous is not None:
                previous += s.execute(
                    select(func.count())
                    .select_from(t)
                    .where(present, _kid(column) == literal(keys.previous.key_id, LargeBinary))
                ).scalar_one()
            newest = select(column).where(present).order_by(pk.desc()).limit(sample)
            for value in s.execute(newest).scalars():
                tried += 1
                try:
                    keys.decrypt(value, sealed.context.encode("ascii"))
                except DataKeyError:
                    continue
                opened += 1
    other = total - current - previous
    detail = {
        "sealed_values": total,
        "under_current_key": current,
        "under_previous_key": previous,
        "under_other_keys": other,
        "sampled": tried,
        "opened": opened,
    }
    if total == 0:
        return Finding(
            "data_key", "ok", T("Nothing is sealed yet: the data key is set."), None, detail
        )
    if opened == 0:
        return Finding(
            "data_key",
            "fail",
            T(
                "CERCLE_DATA_KEY does not open the stored data: it is not the key it was "
                "sealed with."
            ),
            WRONG_KEY_FIX,
            detail,
        )
    if other or opened < tried:
        return Finding(
            "data_key",
            "warn",
            TN(
                "{n} stored value is under a key Cercle does not have.",
                "{n} stored values are under a key Cercle does not have.",
                other or tried - opened,
            ),
            T(
                "If a key rotation was started, set the old key as CERCLE_DATA_KEY_PREVIOUS and "
                "run `cercle keys rotate`; `cercle keys verify` counts what is left "
                "(docs/keys.md)."
            ),
            detail,
        )
    if keys.previous is not None and previous == 0:
        return Finding(
            "data_key",
            "warn",
            T("Key rotation is finished but CERCLE_DATA_KEY_PREVIOUS is still set."),
            T("Remove CERCLE_DATA_KEY_PREVIOUS from the environment and restart (docs/keys.md)."),
            detail,
        )
    return Finding(
        "data_key",
        "ok",
        TN(
            "CERCLE_DATA_KEY opens the stored data ({n} sealed value).",
            "CERCLE_DATA_KEY opens the stored data ({n} sealed values).",
            total,
        ),
        None,
        detail,
    )


def require_data_key(engine: Engine, keys: DataKeys) -> None:
    """Refuse to start with a wrong key: raise :class:`WrongDataKeyError` naming the variable.

    Called by ``web``, ``worker`` and ``run`` before migrations or anything else writes.
    """
    finding = check_data_key(engine, keys)
    if finding.status == "fail":
        summary, fix = finding.text("en")
        raise WrongDataKeyError(f"{summary} Nothing was changed. {fix}")
