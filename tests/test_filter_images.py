"""FilterImages in a Beam pipeline: every pair kept with its fields or dropped with its reason."""

from __future__ import annotations

import json
import random

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from PIL import Image

from lait.errors import UsageError
from lait.pipeline.filter_images import FilterImages
from lait.pipeline.funnel import funnel_from_counts
from lait.pipeline.in_process_runner import InProcessRunner
from lait.pipeline.options import LaitOptions
from lait.pipeline.schema import STAGE_FIELDS
from tests.conftest import shared_path
from tests.synthetic_images import bar_chart, encode
from tests.test_image_decode import _png_claiming


def _large_photos(n: int) -> list[bytes]:
    """The first `n` natural photos of ../shared whose sides are both larger than 300 px."""
    found = []
    for path in sorted(shared_path("natural", "photo").glob("*.jpg")):
        with Image.open(path) as image:
            if min(image.size) > 300:
                found.append(path.read_bytes())
        if len(found) == n:
            break
    return found


def _run(pairs: list[dict], tmp_path, *flags: str) -> tuple[list[dict], list[dict], dict]:
    out = tmp_path / f"run-{random.random()}"
    out.mkdir()
    options = PipelineOptions(["--runner=DirectRunner", *flags])
    with beam.Pipeline(runner=InProcessRunner(), options=options) as p:
        result = p | beam.Create(pairs) | FilterImages(options.view_as(LaitOptions))
        for name, pcoll in (("kept", result.main), ("drops", result.drops)):
            # Bytes fields (the image, the EfficientNet outputs handed on) are written as their lengths.
            (pcoll | f"{name}.Json" >> beam.Map(lambda r: json.dumps(
                {k: len(v) if isinstance(v, bytes) else v for k, v in r.items() if k != "image_bytes"}))
             | f"{name}.Write" >> beam.io.WriteToText(str(out / name), shard_name_template=""))
        (result.counts | beam.combiners.ToList()
         | beam.Map(lambda c: (out / "funnel.json").write_text(json.dumps(funnel_from_counts(c)))))
    read = lambda name: [json.loads(line) for line in (out / name).read_text().splitlines()]  # noqa: E731
    funnel = next(s for s in json.loads((out / "funnel.json").read_text())["stages"] if s["name"] == "FilterImages")
    return read("kept"), read("drops"), funnel


def test_filter_images_keeps_photos_and_explains_every_drop(tmp_path):
    photos = _large_photos(2)
    files = {
        "photo0": photos[0], "photo1": photos[1],
        "chart": encode(bar_chart(seed=5), "PNG"),
        "small": encode(Image.open(shared_path("captions", "images", "989851184_9ef368e520.jpg")), "JPEG"),
        "banner": encode(Image.new("RGB", (1300, 400), (30, 90, 160)), "JPEG"),
        "bomb": _png_claiming(20000, 20000),
        "svg": b"<svg xmlns='http://www.w3.org/2000/svg' width='500' height='500'/>",
        "truncated": photos[0][: len(photos[0]) // 3],
    }
    pairs = [{"image_url": f"https://example.com/{name}", "image_bytes": data, "text": name}
             for name, data in files.items()]
    kept, drops, funnel = _run(pairs, tmp_path)
    assert sorted(r["text"] for r in kept) == ["photo0", "photo1"]
    for record in kept:
        assert set(STAGE_FIELDS["FilterImages"]) <= set(record)
        assert record["width"] > 300 and record["height"] > 300 and record["image_format"] == "JPEG"
        assert record["natural_score"] >= 0.5 and record["nsfw_score"] <= 0.5
        assert len(record["image_sha1"]) == 40 and len(record["image_phash"]) == 16
        assert (record["efficientnet_embedding"], record["efficientnet_probs"], record["efficientnet_detail"]) == (
            1280 * 4, 1000 * 4, 512 * 4)
    reasons = {d["image_url"].rsplit("/", 1)[1]: d["reason"] for d in drops}
    assert reasons == {"chart": "not_natural", "small": "too_small", "banner": "aspect_ratio",
                       "bomb": "decompression_bomb", "svg": "unsupported_format", "truncated": "corrupt_image"}
    assert all(d["stage"] == "FilterImages" for d in drops)
    assert funnel["in"] == 8 and funnel["out"] == 2 and sum(funnel["dropped"].values()) == 6


def test_thresholds_come_from_the_options(tmp_path):
    pairs = [{"image_url": "https://example.com/chart", "image_bytes": encode(bar_chart(seed=6), "PNG")}]
    kept, drops, _ = _run(pairs, tmp_path, "--min_natural=0", "--min_image_side=100")
    assert len(kept) == 1 and not drops and kept[0]["natural_score"] < 0.5


def test_bad_thresholds_are_usage_errors():
    with pytest.raises(UsageError, match="min_natural"):
        FilterImages(PipelineOptions(["--min_natural=1.5"]).view_as(LaitOptions))


def test_filter_image_command_prints_one_json_line_per_file(tmp_path, capsys):
    from lait.pipeline.cli import main

    chart, photo, small = tmp_path / "chart.png", tmp_path / "photo.jpg", tmp_path / "small.jpg"
    chart.write_bytes(encode(bar_chart(seed=7), "PNG"))
    photo.write_bytes(_large_photos(1)[0])
    small.write_bytes(shared_path("captions", "images", "989851184_9ef368e520.jpg").read_bytes())
    assert main(["filter-image", str(chart), str(photo), str(small)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["path"] for line in lines] == [str(chart), str(photo), str(small)]
    assert set(lines[0]) >= {"path", "width", "height", "nsfw", "face", "natural", "phash", "kept", "reasons"}
    assert lines[0]["reasons"] == ["not_natural"] and not lines[0]["kept"]
    assert lines[1]["kept"] and lines[1]["reasons"] == [] and lines[1]["natural"] >= 0.5
    assert lines[2]["reasons"] == ["too_small"] and lines[2]["natural"] >= 0.5  # still scored here
    assert main(["filter-image", str(tmp_path / "missing.jpg")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_worker_loads_the_models_with_its_first_image_worth_scoring():
    from lait.pipeline.filter_images import FilterImagesFn, filter_settings

    fn = FilterImagesFn(filter_settings(PipelineOptions([]).view_as(LaitOptions)))
    fn.setup()
    fn.start_bundle()
    small = encode(Image.open(shared_path("captions", "images", "989851184_9ef368e520.jpg")), "JPEG")
    out = list(fn.run([{"image_bytes": small}, {"image_bytes": b"<html>not an image</html>"}]))
    assert [r.reason for r in out] == ["too_small", "corrupt_image"]
    assert fn.image_filter._natural is None  # nothing worth scoring: no models loaded
    list(fn.run([{"image_bytes": _large_photos(1)[0]}]))
    assert fn.image_filter._natural is not None


def test_no_image_takes_its_batch_down():
    """Every check off, a line of pixels reaches the models (its statistics need two pixels per
    axis) and is scored; an image whose check raises all the same is dropped as filter_error, alone."""
    from lait.pipeline.filter_images import FilterImagesFn, filter_settings

    options = PipelineOptions(["--min_image_side", "0", "--max_aspect_ratio", "0"]).view_as(LaitOptions)
    fn = FilterImagesFn(filter_settings(options))
    fn.setup()
    fn.start_bundle()
    lines = [encode(Image.new("RGB", size, (90, 120, 30)), "PNG") for size in ((1, 1), (600, 1), (1, 40))]
    photo = _large_photos(1)[0]
    out = list(fn.run([{"image_bytes": data} for data in [*lines, photo]]))
    records = [r.record if hasattr(r, "record") else r for r in out]
    assert len(out) == 4 and all(r["natural_score"] is not None for r in records)
    assert [getattr(r, "reason", None) for r in out[:3]] == ["not_natural"] * 3

    real_check = fn.image_filter.check

    def check(files):
        if b"bad" in files:
            raise ZeroDivisionError("division by zero")
        return real_check(files)

    fn.image_filter.check = check
    out = list(fn.run([{"image_bytes": b"bad"}, {"image_bytes": photo}]))
    assert out[0].reason == "filter_error" and "ZeroDivisionError" in out[0].detail
    assert isinstance(out[1], dict) and out[1]["natural_score"] >= 0.5


class _FullDetectorNsfw:
    """NSFW scores from the whole NudeNet detector (box branch and all classes), as before the cut."""

    def __init__(self) -> None:
        from lait.encoders.onnx_sessions import cpu_session
        from lait.filters.nsfw import nudenet_model_path

        self.session = cpu_session(nudenet_model_path())

    def scores(self, images):
        import numpy as np

        from lait.filters.nsfw import FACE_CLASSES, _square_input, class_score_of_detections

        if not images:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        (output,) = self.session.run(None, {"images": np.stack([_square_input(image) for image in images])})
        return (np.clip(class_score_of_detections(output), 0.0, 1.0),
                np.clip(class_score_of_detections(output, FACE_CLASSES), 0.0, 1.0))


def test_fast_networks_give_the_same_verdicts_as_the_plain_ones():
    """EfficientNet on ONNX Runtime, NudeNet cut to the NSFW score, inputs built in place: the same
    decisions and scores as the plain PyTorch network and the whole detector on one batch, for drawn
    non-photos and real photos."""
    import numpy as np

    from lait.encoders.efficientnet import EfficientNetLite0
    from lait.filters.image_filter import ImageFilter
    from lait.filters.naturalness import NaturalnessScorer
    from lait.filters.nsfw import NsfwScorer
    from tests.synthetic_images import app_screenshot, box_diagram, flat_icon, text_page

    drawn = [bar_chart(1), text_page(2), flat_icon(3), box_diagram(4), app_screenshot(5)]
    files = [encode(image, "PNG") for image in drawn] + [encode(image.convert("RGB"), "JPEG") for image in drawn]
    files += _large_photos(4)
    fast = ImageFilter(score_all=True)
    fast._natural, fast._nsfw = NaturalnessScorer(device="cpu"), NsfwScorer()
    torch_net = EfficientNetLite0(device="cpu")
    torch_net.fast, torch_net.chunk = torch_net.model, len(files)  # the plain network in one pass
    plain = ImageFilter(score_all=True)
    plain._natural, plain._nsfw = NaturalnessScorer(net=torch_net), _FullDetectorNsfw()
    new, old = fast.check(files), plain.check(files)
    assert [v.reasons for v in new] == [v.reasons for v in old]
    assert any(v.kept for v in new) and any("not_natural" in v.reasons for v in new)
    for a, b in zip(new, old):
        assert a.natural_score == pytest.approx(b.natural_score, abs=2e-3)
        assert a.nsfw_score == pytest.approx(b.nsfw_score, abs=1e-4)
        assert a.face_score == pytest.approx(b.face_score, abs=1e-4)
        assert a.image_phash == b.image_phash
        for name in ("efficientnet_embedding", "efficientnet_detail"):
            assert np.allclose(np.frombuffer(getattr(a, name), np.float32),
                               np.frombuffer(getattr(b, name), np.float32), atol=1e-3)


def test_the_device_option_reaches_the_networks_and_is_left_to_the_worker_by_default():
    from lait.pipeline.filter_images import filter_settings
    from lait.pipeline.options import LaitOptions
    from lait.pipeline.score_relevance import ScoreRelevance

    assert filter_settings(LaitOptions(flags=[]))["device"] is None  # each worker picks cuda where it has one
    assert filter_settings(LaitOptions(flags=["--device", "cpu"]))["device"] == "cpu"
    assert ScoreRelevance(LaitOptions(flags=["--device", "cpu"])).dofn.device == "cpu"
