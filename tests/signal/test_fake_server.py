"""The fake itself: it must refuse what the real server would, or the other tests prove little."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests.fakes.signal_server import FakeSignalServer, SpecValidator, jpeg_with_gps
from tests.signal.conftest import ALICE, ORG

pytestmark = pytest.mark.anyio


async def test_a_misspelt_field_is_refused_and_recorded(fake: FakeSignalServer) -> None:
    body = {"number": ORG, "recipients": [ALICE], "message": "hi", "quote_autor": ORG}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"http://{fake.service}/v2/send", json=body)
    assert response.status_code == 400
    assert any("quote_autor" in v for v in fake.violations)
    assert fake.sent == []
    fake.violations.clear()  # seen; the fixture's own check would fail otherwise


def test_the_validator_knows_required_fields_and_types() -> None:
    validator = SpecValidator()
    assert validator.errors("api.UpdateContactRequest", {"recipient": ALICE}) == []
    assert validator.errors("api.UpdateContactRequest", {"expiration_in_seconds": 5})
    assert validator.errors(
        "api.UpdateContactRequest", {"recipient": ALICE, "expiration_in_seconds": "5"}
    )
    assert validator.errors("api.UpdateContactRequest", {"recipient": ALICE, "expiration": 5})


async def test_the_about_answer_is_json_rpc_mode(fake: FakeSignalServer) -> None:
    async with httpx.AsyncClient() as http:
        about = (await http.get(f"http://{fake.service}/v1/about")).json()
    assert about["mode"] == "json-rpc"


def test_the_test_photo_carries_gps_exif() -> None:
    exif = Image.open(io.BytesIO(jpeg_with_gps())).getexif()
    gps = exif.get_ifd(0x8825)
    assert gps[1] == "N"
    assert gps[3] == "W"
