"""Images: every bad upload gets a clear 4xx (never a 500), good ones in both encodings."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from {{ cookiecutter.package_name }}.bodies import INPUTS
from {{ cookiecutter.package_name }}.handler import Input
from {{ cookiecutter.package_name }}.handler_base import InputError
from {{ cookiecutter.package_name }}.images import (
    load,
    png,
    to_tensor,
)
from {{ cookiecutter.package_name }}.settings import Settings

from conftest import PROJECT_DIR, serve

EXAMPLE = (PROJECT_DIR / "examples" / "image.jpg").read_bytes()


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_header_only(width: int, height: int, depth: int = 8, colour_type: int = 2) -> bytes:
    """A PNG that declares a size (and bit depth) but holds almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _animated_png() -> bytes:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    return _encode(frames[0], "PNG", save_all=True, append_images=frames[1:])


def _gray16_png() -> bytes:
    return _encode(Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)), "PNG")


BAD_IMAGES: list[tuple[str, bytes, int, str]] = [
    ("truncated", EXAMPLE[: len(EXAMPLE) // 2], 422, "damaged"),
    ("not an image", b"this is plain text, not a picture", 422, "is not a JPEG or PNG"),
    ("gif", _encode(Image.new("RGB", (8, 8)), "GIF"), 422, "is not a JPEG or PNG"),
    ("bomb", _png_header_only(20000, 20000), 413, "is 20000x20000 pixels"),
    ("animated", _animated_png(), 422, "more than one frame"),
    ("16-bit gray", _gray16_png(), 422, "more than 8 bits per channel"),
    ("16-bit rgb", _png_header_only(8, 8, depth=16), 422, "more than 8 bits per channel"),
    ("empty", b"", 422, "the image is empty"),
]


@pytest.mark.parametrize(("name", "data", "status", "message"), BAD_IMAGES)
def test_bad_images_get_a_clear_4xx_as_json_and_as_upload(
    settings_factory: Callable[..., Settings], name: str, data: bytes, status: int, message: str
) -> None:
    async def go() -> None:
        async with serve(settings_factory()) as (_, client):
            as_json = await client.post(
                "/predict", json={"inputs": [{"image": base64.b64encode(data).decode()}]}
            )
            upload = await client.post("/predict", files={"image": ("x.png", data)})
        for response in (as_json, upload):
            assert response.status_code == status, (name, response.text)
            assert message in response.json()["detail"], (name, response.text)

    asyncio.run(go())


def test_upload_and_json_give_the_same_answer(settings_factory: Callable[..., Settings]) -> None:
    async def go() -> None:
        async with serve(settings_factory()) as (_, client):
            encoded = base64.b64encode(EXAMPLE).decode()
            as_json = await client.post("/predict", json={"inputs": [{"image": encoded}] * 2})
            upload = await client.post(
                "/predict",
                files=[("image", ("a.jpg", EXAMPLE, "image/jpeg"))] * 2,
            )
            data_url = await client.post(
                "/predict", json={"inputs": [{"image": f"data:image/jpeg;base64,{encoded}"}]}
            )
        assert as_json.status_code == upload.status_code == data_url.status_code == 200
        assert as_json.json()["outputs"] == upload.json()["outputs"]
        assert data_url.json()["outputs"] == as_json.json()["outputs"][:1]

    asyncio.run(go())
    # The prediction log hashes the same canonical JSON for both.
    body = json.dumps([{"image": base64.b64encode(EXAMPLE).decode()}])
    from_json = INPUTS.validate_json(body)
    from_upload = [Input.model_validate({"image": EXAMPLE})]
    assert INPUTS.dump_json(from_json) == INPUTS.dump_json(from_upload)


def test_bad_uploads(settings_factory: Callable[..., Settings]) -> None:
    async def go() -> None:
        async with serve(settings_factory(max_items_per_request=2)) as (_, client):
            wrong_field = await client.post("/predict", files={"picture": ("a.jpg", EXAMPLE)})
            assert wrong_field.status_code == 422
            assert "unknown form field 'picture'" in wrong_field.json()["detail"]
            no_file = await client.post("/predict", files={"image": (None, "")})
            assert no_file.status_code == 422
            assert "the image is empty" in no_file.json()["detail"]
            three = await client.post("/predict", files=[("image", ("a.jpg", EXAMPLE))] * 3)
            assert three.status_code == 413, three.text
            assert "too many items: got 3, at most 2" in three.json()["detail"]
            # Far more files than items allowed: the form parser stops counting early.
            many = await client.post("/predict", files=[("image", ("a.jpg", EXAMPLE))] * 50)
            assert many.status_code == 400, many.text

    asyncio.run(go())


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "1"])
def test_other_8_bit_modes_are_converted_to_rgb(mode: str) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    image = load(_encode(Image.new(mode, (20, 10)), fmt), max_pixels=10_000)
    assert image.mode == "RGB"
    assert image.size == (20, 10)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale() -> None:
    big = _encode(Image.new("RGB", (2048, 1536), (10, 200, 30)), "JPEG")
    image = load(big, max_pixels=10_000_000, size=(32, 32))
    assert 32 <= min(image.size) <= 256  # libjpeg scaled it by 1/8 while decoding
    with pytest.raises(InputError, match="at most 1000000 pixels"):
        load(big, max_pixels=1_000_000)


def test_resize_crop_and_normalise() -> None:
    # Left half red, right half blue, 64x32: the centre crop of the resized image keeps
    # both halves; normalised with mean 0.5 and std 0.5, red is +1 in channel 0.
    image = Image.new("RGB", (64, 32), (255, 0, 0))
    image.paste((0, 0, 255), (32, 0, 64, 32))
    tensor = to_tensor(image, (16, 16), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert tensor.shape == (3, 16, 16)
    assert tensor[0, 8, 0].item() == pytest.approx(1.0, abs=0.05)
    assert tensor[2, 8, 15].item() == pytest.approx(1.0, abs=0.05)
    assert float(tensor.min()) >= -1.0 and float(tensor.max()) <= 1.0


def test_example_image_is_a_real_picture() -> None:
    image = Image.open(io.BytesIO(EXAMPLE))
    assert image.format == "JPEG"
    assert image.size[0] >= 32 and image.size[1] >= 32
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).tolist()
    assert len({tuple(pixel) for pixel in pixels}) > 20  # a picture, not a plain fill
    assert png(4, 4).startswith(b"\x89PNG")
