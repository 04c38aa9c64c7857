"""Loading uploads (fashion_rag.person.photo) and the framing transform (fashion_rag.person.framing)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_rag.errors import InputError
from fashion_rag.person.framing import FRAME_HEIGHT, FRAME_WIDTH, FrameTransform, PersonBox, find_people
from fashion_rag.person.photo import load_photo


def pattern(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Random RGB pixels: any geometric mistake changes them."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def png_bytes(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, followed by no pixel data at all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


# Expected numpy result of each EXIF orientation, written out independently of Pillow's table.
ORIENTED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),  # stored landscape, shown turned 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}


def full_transform(width: int, height: int) -> FrameTransform:
    """A transform whose crop holds the whole photo, centred, padded to 3:4 (above and below if need be).

    Built by hand (`fit` pads only on two sides): it exercises padding on every side.
    """
    crop_h = -(-max(height, -(-width * 4 // 3)) // 4) * 4
    crop_w = crop_h * 3 // 4
    return FrameTransform(-((crop_w - width) // 2), -((crop_h - height) // 2), crop_w, crop_h, width, height)


# --------------------------------------------------------------------------------------------------
# Sources and modes


@pytest.mark.parametrize("kind", ["path", "str", "bytes", "file", "pil", "array"])
def test_every_source_kind_gives_the_same_rgb_pixels(kind: str, tmp_path: Path) -> None:
    pixels = pattern(37, 53)
    image = Image.fromarray(pixels)
    data = png_bytes(image)
    (tmp_path / "p.png").write_bytes(data)
    source = {
        "path": tmp_path / "p.png",
        "str": str(tmp_path / "p.png"),
        "bytes": data,
        "file": io.BytesIO(data),
        "pil": image,
        "array": pixels,
    }[kind]
    loaded = load_photo(source)
    assert loaded.mode == "RGB" and loaded.size == (53, 37)
    np.testing.assert_array_equal(np.asarray(loaded), pixels)


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_exif_orientation_is_applied(orientation: int) -> None:
    pixels = pattern(23, 41, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    loaded = load_photo(png_bytes(Image.fromarray(pixels), exif=exif.tobytes()))
    np.testing.assert_array_equal(np.asarray(loaded), ORIENTED[orientation](pixels))


def test_phone_jpeg_rotated_by_exif_is_upright() -> None:
    # Stored landscape 80x60 with a red top-left quadrant; orientation 6 shows it turned clockwise,
    # so the red quadrant ends up top-right of a 60x80 portrait.
    stored = np.full((60, 80, 3), 40, dtype=np.uint8)
    stored[:30, :40] = (230, 20, 20)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    loaded = np.asarray(load_photo(buffer.getvalue()), dtype=int)
    assert loaded.shape == (80, 60, 3)
    assert loaded[5:35, 35:55, 0].mean() > 200 and loaded[5:35, 5:25, 0].mean() < 80


def test_transparency_goes_onto_white() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 0)  # fully transparent -> white
    rgba[0, 1] = (10, 20, 30, 255)  # opaque -> itself
    rgba[0, 2] = (0, 0, 0, 128)  # half transparent black -> mid grey
    loaded = np.asarray(load_photo(png_bytes(Image.fromarray(rgba))))
    np.testing.assert_array_equal(loaded[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(loaded[0, 1], (10, 20, 30))
    assert np.all(np.abs(loaded[0, 2].astype(int) - 127) <= 1)


def test_palette_with_transparency_and_grey_alpha_go_onto_white() -> None:
    palette = Image.new("P", (3, 1))
    palette.putpalette([200, 0, 0, 0, 0, 200] + [0] * 762)
    palette.putdata([0, 1, 0])
    palette.info["transparency"] = 1
    loaded = np.asarray(load_photo(palette))
    np.testing.assert_array_equal(loaded[0], [(200, 0, 0), (255, 255, 255), (200, 0, 0)])
    grey_alpha = Image.fromarray(np.array([[[50, 0], [50, 255]]], dtype=np.uint8), mode="LA")
    np.testing.assert_array_equal(np.asarray(load_photo(grey_alpha))[0], [(255, 255, 255), (50, 50, 50)])


def test_greyscale_becomes_grey_rgb() -> None:
    grey = np.random.default_rng(1).integers(0, 256, size=(19, 31), dtype=np.uint8)
    loaded = np.asarray(load_photo(png_bytes(Image.fromarray(grey))))
    assert loaded.shape == (19, 31, 3)
    for channel in range(3):
        np.testing.assert_array_equal(loaded[:, :, channel], grey)


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 32896, 65535, 1000, 65000]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    loaded = np.asarray(load_photo(png_bytes(image)))
    np.testing.assert_array_equal(loaded[0, :, 0], np.rint(values[0] / 257.0).astype(np.uint8))
    np.testing.assert_array_equal(loaded[0, :, 0], [0, 1, 128, 255, 4, 253])


def test_thirty_two_bit_int_and_float_modes() -> None:
    as_int = Image.fromarray(np.array([[0, 65535, 70000, -5]], dtype=np.int32))
    assert as_int.mode == "I"
    np.testing.assert_array_equal(np.asarray(load_photo(as_int))[0, :, 1], [0, 255, 255, 0])
    as_float = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert as_float.mode == "F"
    np.testing.assert_array_equal(np.asarray(load_photo(as_float))[0, :, 2], [0, 128, 255])


def test_cmyk_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    buffer = io.BytesIO()
    cmyk.save(buffer, format="TIFF")
    np.testing.assert_array_equal(np.asarray(load_photo(buffer.getvalue()))[0, 0], (255, 0, 0))


def test_animated_gif_uses_the_first_frame_and_leaves_the_callers_frame_alone() -> None:
    red, blue = Image.new("RGB", (8, 6), (255, 0, 0)), Image.new("RGB", (8, 6), (0, 0, 255))
    buffer = io.BytesIO()
    red.save(buffer, format="GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    np.testing.assert_array_equal(np.asarray(load_photo(buffer.getvalue()))[0, 0], (255, 0, 0))
    opened = Image.open(io.BytesIO(buffer.getvalue()))
    opened.seek(1)
    np.testing.assert_array_equal(np.asarray(load_photo(opened))[0, 0], (255, 0, 0))
    assert opened.tell() == 1


def test_the_callers_image_and_array_are_never_modified() -> None:
    pixels = pattern(20, 30)
    rgba = Image.fromarray(np.dstack([pixels, np.full((20, 30), 255, np.uint8)]))
    exif = Image.Exif()
    exif[0x0112] = 6
    rgba.info["exif"] = exif.tobytes()
    before = np.asarray(rgba).copy()
    loaded = load_photo(rgba)
    assert loaded is not rgba and rgba.mode == "RGBA" and rgba.size == (30, 20)
    np.testing.assert_array_equal(np.asarray(rgba), before)
    rgb = Image.fromarray(pixels)
    out = load_photo(rgb)
    out.putpixel((0, 0), (1, 2, 3))
    assert rgb.getpixel((0, 0)) == tuple(pixels[0, 0])
    grey = pixels[:, :, 0].copy()
    out = load_photo(grey)
    out.putpixel((0, 0), (1, 2, 3))
    assert grey[0, 0] == pixels[0, 0, 0]


# --------------------------------------------------------------------------------------------------
# Bad files


def test_pixel_limit_is_checked_from_the_header_before_decoding() -> None:
    # 12000x12000 with no pixel data: decoding would fail as truncated, so the limit message proves the
    # check ran on the header alone.
    with pytest.raises(InputError, match=r"12000x12000 = 144\.0 megapixels, above the limit of 40 megapixels"):
        load_photo(png_header_only(12000, 12000))
    with pytest.raises(InputError, match="above the limit of 40 megapixels"):
        load_photo(png_header_only(30000, 30000))  # beyond Pillow's own bomb limit too
    with pytest.raises(InputError, match="megapixels"):
        load_photo(pattern(30, 40), max_pixels=1000)
    assert load_photo(pattern(30, 40), max_pixels=1200).size == (40, 30)


def test_empty_missing_truncated_corrupt_and_non_image_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty \(0 bytes\)"):
        load_photo(empty)
    with pytest.raises(InputError, match=r"empty \(0 bytes\)"):
        load_photo(b"")
    with pytest.raises(InputError, match="no such file"):
        load_photo(tmp_path / "missing.png")
    buffer = io.BytesIO()
    Image.fromarray(pattern(200, 200)).save(buffer, format="JPEG")
    with pytest.raises(InputError, match="truncated"):
        load_photo(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    data = bytearray(png_bytes(Image.fromarray(pattern(50, 50))))
    data[60:120] = bytes(60)  # damage the compressed pixel data
    with pytest.raises(InputError, match="corrupt|truncated|could not be read"):
        load_photo(bytes(data))
    text = tmp_path / "notes.txt"
    text.write_text("this is not a photo")
    with pytest.raises(InputError, match="not an image that can be read.*JPEG, PNG"):
        load_photo(text)
    with pytest.raises(InputError, match="shape"):
        load_photo(np.zeros((4, 4, 5), dtype=np.uint8))


# --------------------------------------------------------------------------------------------------
# Framing


def test_fit_keeps_the_box_and_the_exact_aspect() -> None:
    for box, size in [
        ((100, 50, 300, 470), (640, 480)),
        ((10, 10, 60, 200), (70, 210)),
        ((0, 0, 4000, 3000), (4000, 3000)),
        ((1500, 200, 2500, 2990), (4000, 3000)),
        ((0, 40, 900, 600), (900, 600)),  # a wide photo, the person's shoulders at both edges
    ]:
        t = FrameTransform.fit(box, size)
        assert t.width * 4 == t.height * 3
        # The whole box is inside the crop, whatever the photo's shape: nothing of it is cut away.
        assert t.left <= box[0] and t.left + t.width >= box[2]
        assert t.top <= box[1] and t.top + t.height >= box[3]
        # The smallest such crop: no more than the 3:4 rounding (< 4 px) above the box plus its margin.
        margin = 0.08 * (box[3] - box[1])
        region_w = min(size[0], box[2] + margin) - max(0, box[0] - margin)
        region_h = min(size[1], box[3] + margin) - max(0, box[1] - margin)
        assert t.height < max(region_h, region_w * 4 / 3) + 4
        if t.width <= size[0]:
            assert t.left >= 0 and t.left + t.width <= size[0]
        if t.height <= size[1]:
            assert t.top >= 0 and t.top + t.height <= size[1]


def test_fit_pads_a_narrow_photo_at_the_sides_and_a_wide_one_above_and_below() -> None:
    narrow = FrameTransform.fit((0, 0, 60, 400), (60, 400), margin=0.0)
    assert (narrow.width, narrow.height) == (300, 400)
    left, top, right, bottom = narrow.padding
    assert (top, bottom) == (0, 0) and left + right == 240 and abs(left - right) <= 1
    # A square photo the person fills from edge to edge: the crop keeps every column (513 = 3:4 rounding
    # of 684 rows) and pads 172 rows, half above and half below the box's centre.
    wide = FrameTransform.fit((0, 0, 512, 512), (512, 512))
    assert (wide.width, wide.height) == (513, 684)
    assert wide.padding == (0, 86, 1, 86)
    off_centre = FrameTransform.fit(PersonBox(0, 0, 512, 512, 1.0, centre_x=150.0), (512, 512))
    assert -1 <= off_centre.left <= 0 and off_centre.left + off_centre.width >= 512  # the centroid cuts nothing
    inside = FrameTransform.fit(PersonBox(100, 0, 300, 512, 1.0, centre_x=150.0), (512, 512), margin=0.0)
    assert (inside.left, inside.width) == (0, 384)  # centred on the centroid, kept inside the photo


def test_points_map_both_ways() -> None:
    t = FrameTransform.fit((123, 45, 987, 1400), (1500, 1600))
    points = np.array([[0.0, 0.0], [123.4, 567.8], [np.nan, np.nan]])
    np.testing.assert_allclose(t.to_original(t.to_frame(points)), points, atol=1e-9)
    # The crop's first pixel centre maps to frame pixel centre (s - 1) / 2; its edge to -0.5.
    np.testing.assert_allclose(t.to_frame(np.array([[t.left - 0.5, t.top - 0.5]])), [[-0.5, -0.5]])
    restored = FrameTransform.from_dict(t.to_dict())
    assert restored == t


@pytest.mark.parametrize("size", [(37, 53), (101, 77), (383, 511), (384, 512), (200, 91), (7, 5)])
def test_round_trip_is_exact_with_nearest_when_the_frame_is_not_smaller(size: tuple[int, int]) -> None:
    width, height = size
    pixels = pattern(height, width, seed=width)
    t = full_transform(width, height)
    assert t.scale >= 1
    framed = t.frame(pixels, interpolation="nearest")
    assert framed.shape == (FRAME_HEIGHT, FRAME_WIDTH, 3) and framed.dtype == np.uint8
    np.testing.assert_array_equal(t.unframe(framed, interpolation="nearest"), pixels)


def _loaded_variants() -> dict[str, Image.Image]:
    rgb = pattern(45, 67, seed=3)
    exif = Image.Exif()
    exif[0x0112] = 8
    alpha = np.random.default_rng(4).integers(0, 256, size=(45, 67), dtype=np.uint8)
    sixteen = (np.random.default_rng(5).integers(0, 65536, size=(45, 67))).astype(np.uint16)
    return {
        "exif-rotated": load_photo(png_bytes(Image.fromarray(rgb), exif=exif.tobytes())),
        "rgba": load_photo(Image.fromarray(np.dstack([rgb, alpha]))),
        "grey": load_photo(Image.fromarray(rgb[:, :, 0])),
        "16-bit": load_photo(png_bytes(Image.fromarray(sixteen))),
    }


@pytest.mark.parametrize("name", ["exif-rotated", "rgba", "grey", "16-bit"])
def test_loaded_photos_of_every_kind_survive_the_round_trip(name: str) -> None:
    image = _loaded_variants()[name]
    pixels = np.asarray(image)
    t = full_transform(*image.size)
    np.testing.assert_array_equal(t.unframe(t.frame(pixels, "nearest"), "nearest"), pixels)
    # The default resampling returns the same picture up to interpolation error.
    smooth = np.asarray(Image.fromarray(pixels).resize((8, 8), Image.BOX).resize(image.size, Image.BILINEAR))
    back = t.unframe(t.frame(smooth))
    assert np.abs(back.astype(int) - smooth.astype(int)).mean() < 1.5


def test_shrinking_round_trip_is_close_and_aligned() -> None:
    height, width = 1603, 1201
    ys, xs = np.mgrid[0:height, 0:width]
    smooth = np.dstack([xs * 255 // width, ys * 255 // height, (xs + ys) * 255 // (width + height)]).astype(np.uint8)
    t = FrameTransform.fit((100, 0, 1100, 1603), (width, height))
    assert t.scale < 1
    back = t.unframe(t.frame(smooth), background=smooth)
    assert np.abs(back.astype(int) - smooth.astype(int)).max() <= 3
    # A bright square lands where the point mapping says, in the frame and back.
    marker = np.zeros((height, width), dtype=np.float32)
    marker[800:812, 600:612] = 1.0
    framed = t.frame(marker)
    row, col = np.unravel_index(np.argmax(framed), framed.shape)
    expected = t.to_frame(np.array([[605.5, 805.5]]))[0]
    assert abs(col - expected[0]) <= 1.0 and abs(row - expected[1]) <= 1.0


def test_unframed_alpha_keeps_exact_zeros_and_the_original_outside_the_crop() -> None:
    height, width = 900, 1300
    original = pattern(height, width, seed=9)
    t = FrameTransform.fit((500, 100, 800, 800), (width, height))
    assert t.left > 0  # the crop leaves some of the photo outside
    alpha_frame = np.zeros((FRAME_HEIGHT, FRAME_WIDTH), dtype=np.float32)
    alpha_frame[200:300, 100:250] = 1.0
    alpha_frame[300:310, 100:250] = np.linspace(1, 0, 10, dtype=np.float32)[:, None]
    alpha = t.unframe(alpha_frame)
    assert alpha.shape == (height, width) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    # Everything further than one frame pixel from the painted area maps to exactly 0.
    far = t.unframe((_grow(alpha_frame > 0, 2)).astype(np.float32)) == 0
    assert far.sum() > 0.9 * far.size and np.all(alpha[far] == 0.0)
    edit = np.zeros_like(original)
    out = np.where(alpha[..., None] == 0, original, alpha[..., None] * edit + (1 - alpha[..., None]) * original)
    np.testing.assert_array_equal(out[far], original[far])
    assert np.all(out[alpha == 1] == 0)
    with_channel = t.unframe(alpha_frame[..., None])  # the generation stage's (512, 384, 1) alpha
    assert with_channel.shape == (height, width, 1)
    np.testing.assert_array_equal(with_channel[..., 0], alpha)
    background = np.full((height, width, 3), 7, dtype=np.uint8)
    image = t.unframe(np.full((FRAME_HEIGHT, FRAME_WIDTH, 3), 200, np.uint8), background=background)
    assert np.all(image[:, : t.left] == 7) and np.all(image[t.top : t.top + t.height, t.left + 5] == 200)


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    grown = mask.copy()
    for _ in range(pixels):
        grown[1:] |= grown[:-1].copy()
        grown[:-1] |= grown[1:].copy()
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
    return grown


def test_frame_handles_masks_labels_and_many_channels() -> None:
    t = FrameTransform.fit((10, 10, 300, 500), (333, 517))
    labels = np.random.default_rng(2).integers(0, 18, size=(517, 333)).astype(np.int64)
    framed = t.frame(labels)
    assert framed.dtype == np.int64 and set(np.unique(framed)) <= set(range(18))
    mask = np.zeros((517, 333), dtype=bool)
    mask[100:200, 50:150] = True
    framed_mask = t.frame(mask)
    assert framed_mask.dtype == np.bool_ and framed_mask.shape == (FRAME_HEIGHT, FRAME_WIDTH)
    stack = np.random.default_rng(3).random((517, 333, 18)).astype(np.float32)
    framed_stack = t.frame(stack, "linear")
    np.testing.assert_allclose(framed_stack[:, :, 17], t.frame(stack[:, :, 17], "linear"), atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        t.frame(np.zeros((10, 10)))
    with pytest.raises(ValueError, match="interpolation"):
        t.frame(stack, "bogus")


def test_fast_photo_framing_matches_the_array_framing() -> None:
    height, width = 2400, 1800
    ys, xs = np.mgrid[0:height, 0:width]
    smooth = np.dstack([xs * 255 // width, ys * 255 // height, 128 + 0 * xs]).astype(np.uint8)
    for box in [(300, 100, 1500, 2300), (0, 0, 1800, 2400), (700, 1000, 1000, 1500)]:
        t = FrameTransform.fit(box, (width, height))
        fast = np.asarray(t.frame_image(Image.fromarray(smooth))).astype(int)
        exact = t.frame(smooth).astype(int)
        assert np.abs(fast - exact).mean() < 1.0 and np.abs(fast - exact).max() <= 6
    narrow = np.ascontiguousarray(smooth[:, :500])  # too narrow for 3:4: the frame repeats the edge colours
    t = FrameTransform.fit((0, 0, 500, 2400), (500, 2400))
    assert t.padding[0] > 0 and t.padding[2] > 0
    fast = np.asarray(t.frame_image(Image.fromarray(narrow))).astype(int)
    exact = t.frame(narrow).astype(int)
    assert np.abs(fast - exact).mean() < 1.0 and np.abs(fast - exact).max() <= 6


def textured(height: int, width: int) -> np.ndarray:
    """A 1-pixel checkerboard, i.i.d. noise and a fine knit-like sine pattern, one per channel: the textures
    an aliasing resize gets wrong."""
    ys, xs = np.mgrid[0:height, 0:width]
    checker = ((xs + ys) % 2) * 255
    noise = np.random.default_rng(3).integers(0, 256, (height, width))
    knit = 127 + 127 * np.sin(xs * 2.2) * np.cos(ys * 1.7)
    return np.dstack([checker, noise, knit]).astype(np.uint8)


@pytest.mark.parametrize("crop_height", [600, 1000, 2400])
def test_photo_frame_is_pillows_bicubic_resize_of_the_crop(crop_height: int) -> None:
    """UNet input rule 3: the person image is resized like the official loader, Pillow's BICUBIC `Image.resize`.

    Reference: crop, then `Image.resize((384, 512), BICUBIC)`. Tolerance: 1.0 grey level on average per
    channel (0.1 below 3x the frame's size, where only the border rows differ: Pillow's kernel reads
    pixels just outside the crop); above 3x, Pillow's reducing_gap=3 box reduction adds up to ~1 level
    on noise. A non-antialiased resize is off by ~30 levels on the checkerboard.
    """
    width = crop_height * 3 // 4 + 40
    photo = textured(crop_height, width)
    t = FrameTransform.fit((20, 0, width - 20, crop_height), (width, crop_height), margin=0.0)
    assert t.height == crop_height and not any(t.padding)
    box = (t.left, t.top, t.left + t.width, t.top + t.height)
    expected = np.asarray(Image.fromarray(photo).crop(box).resize((384, 512), Image.Resampling.BICUBIC), float)
    framed = np.asarray(t.frame_image(Image.fromarray(photo)), float)
    error = np.abs(framed - expected).reshape(-1, 3).mean(axis=0)
    assert (error <= (0.1 if crop_height < 3 * 512 else 1.0)).all(), error
    aliased = np.asarray(Image.fromarray(photo).crop(box).resize((384, 512), Image.Resampling.NEAREST), float)
    assert np.abs(aliased - expected)[..., 0].mean() > 20  # the tolerance can tell aliasing apart


def test_find_people_orders_by_area_and_ignores_fragments() -> None:
    prob = np.zeros((200, 300), dtype=np.float32)
    prob[20:180, 20:100] = 0.9  # the largest person
    prob[60:180, 200:260] = 0.8  # a second person, shorter
    prob[10:20, 150:160] = 0.9  # a small fragment: not a person
    people = find_people(prob)
    assert len(people) == 2
    assert (people[0].x0, people[0].y0, people[0].x1, people[0].y1) == (20, 20, 100, 180)
    assert people[0].centre_x == pytest.approx(60.0)
    assert (people[1].x0, people[1].x1) == (200, 260)
    assert find_people(np.zeros((50, 50))) == []


def test_a_lazily_opened_truncated_pil_image_is_refused_cleanly() -> None:
    buffer = io.BytesIO()
    Image.fromarray(pattern(200, 200)).save(buffer, format="JPEG")
    lazy = Image.open(io.BytesIO(buffer.getvalue()[:2000]))  # header fine, pixels cut off
    with pytest.raises(InputError, match="could not be decoded|truncated"):
        load_photo(lazy)
