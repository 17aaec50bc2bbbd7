"""Object regions of an image: the image tokens of ImageBERT.

ImageBERT feeds the top 100 regions of a Visual-Genome Faster R-CNN to its encoder: per region a
feature, a 5-d position ``(x1/W, y1/H, x2/W, y2/H, area/(W*H))`` and the detector's label (the
MOC target). Two extractors give regions in that form:

- :class:`EfficientNetRegionExtractor` (the offline default): proposes boxes on an ImageNet
  EfficientNet-Lite0 (multi-scale sliding windows, class-activation boxes and boxes around
  activation peaks), pools each box's 1280-d feature with RoIAlign-style bilinear sampling,
  classifies it with the ImageNet head (1000 classes), drops near duplicates with NMS and keeps
  the N most confident;
- :class:`lait.encoders.region_files.NpzRegionReader`: precomputed bottom-up-attention features,
  one ``.npz`` per image (the layout UNITER, ViLBERT and LXMERT users already have), found by the
  image's SHA-1, its URL's file name or the SHA-1 of its URL. Feature width and label count come
  from the files.

Example
-------
>>> from PIL import Image
>>> extractor = EfficientNetRegionExtractor(max_regions=100)
>>> regions = extractor.extract([Image.open("dog.jpg")])[0]
>>> regions.boxes.shape, regions.features.shape, extractor.label_names[regions.labels[0]]
((100, 5), (100, 1280), 'golden retriever')
"""

from __future__ import annotations

import io
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from lait.encoders.efficientnet import IMAGENET_CLASSES, EfficientNetLite0, fused_for_inference

MAX_IMAGE_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit, raised as an error here


@dataclass
class Regions:
    """The regions of one image, most confident first.

    Attributes
    ----------
    boxes : ndarray [N, 5] float32
        ``(x1/W, y1/H, x2/W, y2/H, area/(W*H))``, all in [0, 1].
    features : ndarray [N, D] float16
    labels : ndarray [N] int32
        The top label of each region.
    label_probs : ndarray [N, K] float16 or None
        Each region's label distribution, when the extractor has one.
    """

    boxes: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    label_probs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def to_record(self, image_sha1: str) -> dict:
        """The record :func:`lait.imagebert.data.regions_table` writes as one row."""
        return {"image_sha1": image_sha1, "boxes": self.boxes, "features": self.features,
                "labels": self.labels, "label_probs": self.label_probs}


@dataclass
class Failure:
    """Why an image got no regions: a short snake_case reason and a detail for people."""

    reason: str
    detail: str = ""


class RegionExtractor(ABC):
    """Images (or image records) in, :class:`Regions` out.

    Subclasses set ``name``, ``feature_dim`` (D), ``num_labels`` (K), ``label_names`` and
    ``max_regions`` (N), and implement :meth:`extract_records`. ``needs_image_bytes`` says whether
    the records must carry ``image_bytes`` (a reader of precomputed files does not need them, so the
    Beam job leaves that column unread).
    """

    name: str = ""
    feature_dim: int = 0
    num_labels: int = 0
    label_names: list[str] = []
    max_regions: int = 100
    needs_image_bytes: bool = True

    @abstractmethod
    def extract_records(self, records: Sequence[dict]) -> list[Regions | Failure]:
        """One result per record ``{image_sha1, image_url, image_bytes?}``, in order."""


# -- decoding -------------------------------------------------------------------------------------------


def decode_image(data: bytes, max_side: int | None = None) -> Image.Image:
    """RGB image from encoded bytes, EXIF orientation applied (like the corpus's width/height).

    ``max_side`` lets JPEG decoding skip detail that would be thrown away (``Image.draft``).
    Raises ValueError for undecodable bytes and for images over :data:`MAX_IMAGE_PIXELS`.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{image.width}x{image.height} is over {MAX_IMAGE_PIXELS} pixels")
            if max_side and image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))
            image = ImageOps.exif_transpose(image)
            return image.convert("RGB")
    except (OSError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ValueError(f"{type(error).__name__}: {error}") from None


# -- box geometry (torch, batched) ----------------------------------------------------------------------


def box_iou(boxes: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU ``[..., P, P]`` of boxes ``[..., P, 4]`` given as (x1, y1, x2, y2)."""
    area = (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    top_left = torch.maximum(boxes[..., :, None, :2], boxes[..., None, :, :2])
    bottom_right = torch.minimum(boxes[..., :, None, 2:], boxes[..., None, :, 2:])
    overlap = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    union = area[..., :, None] + area[..., None, :] - overlap
    return overlap / union.clamp(min=1e-12)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
        groups: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy non-maximum suppression, batched over the first dimension.

    Parameters
    ----------
    boxes : tensor [B, P, 4]
        (x1, y1, x2, y2).
    scores : tensor [B, P]
        Higher is better; ``-inf`` marks a box that is not there (never kept).
    iou_threshold : float
        A box is dropped when it overlaps a kept, better box by more than this.
    groups : tensor [B, P] of int, optional
        Boxes suppress only boxes of their own group (per-class NMS).

    Returns
    -------
    tensor [B, P] of int64
        Per image, the indices of the kept boxes by decreasing score first, then -1 padding.
    """
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    sorted_boxes = torch.gather(boxes, 1, order[..., None].expand(-1, -1, 4))
    overlaps = box_iou(sorted_boxes) > iou_threshold
    if groups is not None:
        sorted_groups = torch.gather(groups, 1, order)
        overlaps &= sorted_groups[:, :, None] == sorted_groups[:, None, :]
    alive = torch.isfinite(torch.gather(scores, 1, order))
    keep = torch.zeros_like(alive)
    for i in range(order.shape[1]):  # greedy: box i stays if no kept better box suppressed it
        keep[:, i] = alive[:, i]
        alive &= ~(keep[:, i, None] & overlaps[:, i])
    ranks = torch.where(keep, torch.arange(order.shape[1], device=order.device), order.shape[1])
    first = torch.sort(ranks, dim=1, stable=True).values
    return torch.where(first < order.shape[1], torch.gather(order, 1, first.clamp(max=order.shape[1] - 1)), -1)


def sliding_windows(scales: Sequence[float], aspects: Sequence[float]) -> torch.Tensor:
    """Windows ``[P, 4]`` in normalised image coordinates, half-overlapping at every scale.

    A window of scale ``s`` and aspect ``a`` is ``s * sqrt(a)`` wide and ``s / sqrt(a)`` high
    (clipped to 1), placed with a stride of half its size from edge to edge.
    """
    windows = []
    for scale in scales:
        for aspect in aspects:
            width, height = min(1.0, scale * math.sqrt(aspect)), min(1.0, scale / math.sqrt(aspect))
            xs = _positions(width)
            ys = _positions(height)
            windows += [(x, y, x + width, y + height) for y in ys for x in xs]
    unique = sorted(set((round(a, 6), round(b, 6), round(c, 6), round(d, 6)) for a, b, c, d in windows))
    return torch.tensor(unique, dtype=torch.float32)


def _positions(size: float) -> list[float]:
    steps = math.ceil((1.0 - size) / (size / 2) - 1e-9) if size < 1.0 else 0
    return [i * (1.0 - size) / steps for i in range(steps + 1)] if steps else [0.0]


def positions(boxes: np.ndarray) -> np.ndarray:
    """``[N, 5]`` float32 ``(x1, y1, x2, y2, area)`` from normalised ``[N, 4]`` boxes, clipped to [0, 1]."""
    boxes = np.clip(np.asarray(boxes, dtype=np.float32).reshape(-1, 4), 0.0, 1.0)
    area = (boxes[:, 2] - boxes[:, 0]).clip(min=0) * (boxes[:, 3] - boxes[:, 1]).clip(min=0)
    return np.concatenate([boxes, area[:, None]], axis=1).astype(np.float32)


# -- the default extractor ------------------------------------------------------------------------------


class EfficientNetRegionExtractor(RegionExtractor):
    """Regions from an ImageNet EfficientNet-Lite0: proposals, RoI pooling, ImageNet labels, NMS.

    Each image is resized (aspect kept) so that its longer side is ``input_size`` and padded
    bottom-right to a square, so a batch is one tensor. From the backbone's feature map
    ``[1280, h, w]`` the extractor also computes the ImageNet logit map (the classifier applied to
    every cell: pooling is linear, so pooling the logit map over a box gives exactly the classifier's
    logits of the box's pooled feature, for a fraction of the cost of classifying every box).

    Proposals, in normalised image coordinates:

    - sliding windows at ``window_scales`` x ``window_aspects`` with half-window strides (the
      whole image is one of them);
    - class-activation boxes: for each of the image's ``cam_classes`` most likely classes, the box
      around the cells whose activation for that class is over each of ``cam_thresholds`` (a
      fraction of the range);
    - peak boxes: squares of ``peak_sizes`` around the ``peaks`` strongest local maxima of the mean
      activation.

    Each box's feature is the mean of ``samples_per_side`` x ``samples_per_side`` points sampled
    bilinearly inside it on the feature map (RoIAlign with one output bin). Its label
    distribution is the softmax of its pooled logits, its confidence the top probability. NMS per
    top label at ``nms_iou`` drops near duplicates; the ``max_regions`` most confident stay.

    Parameters
    ----------
    max_regions : int, default=100
        N, the paper's 100.
    input_size : int, default=320
        Longer side of the image fed to the backbone (a multiple of 32; 320 gives a 10 x 10 map).
        224 (a 7 x 7 map) is faster but finds fewer distinct regions; bench/bench_regions.py
        measures both.
    nms_iou : float, default=0.3
        Per-label NMS threshold, bottom-up attention's value. On 48 Flickr8k dog photos 0.3 kept
        22 distinct labels per image on average against 7 at 0.5 (where half-overlapping windows of
        one object all survive), with 97 regions per image instead of 100.
    batch_size : int, default=16
        Images per backbone call.
    with_label_probs : bool, default=True
        Keep each region's 1000-class distribution (``label_probs``), not only its top label.
    keep_whole_image : bool, default=True
        The whole-image box is always one of the regions (the image's global context), even when
        NMS or the top-N cut would drop it.
    device : str or None, default=None
        None picks CUDA when available.
    """

    name = "efficientnet-lite0-regions"

    def __init__(self, max_regions: int = 100, input_size: int = 320, nms_iou: float = 0.3, batch_size: int = 16,
                 with_label_probs: bool = True, window_scales: Sequence[float] = (1.0, 0.8, 0.6, 0.45, 0.3, 0.2),
                 window_aspects: Sequence[float] = (1.0, 2.0, 0.5), cam_classes: int = 5,
                 cam_thresholds: Sequence[float] = (0.2, 0.4, 0.6), peaks: int = 8,
                 peak_sizes: Sequence[float] = (0.25, 0.4), samples_per_side: int = 6, keep_whole_image: bool = True,
                 device: str | None = None, network: EfficientNetLite0 | None = None) -> None:
        if max_regions < 1:
            raise ValueError(f"max_regions must be at least 1, got {max_regions}")
        if input_size % 32 or input_size < 64:
            raise ValueError(f"input_size must be a multiple of 32 and at least 64, got {input_size}")
        self.max_regions = max_regions
        self.input_size = input_size
        self.nms_iou = nms_iou
        self.batch_size = batch_size
        self.with_label_probs = with_label_probs
        self.cam_classes = cam_classes
        self.cam_thresholds = torch.tensor(cam_thresholds, dtype=torch.float32)
        self.peaks = peaks
        self.peak_sizes = torch.tensor(peak_sizes, dtype=torch.float32)
        self.samples_per_side = samples_per_side
        self.network = network or EfficientNetLite0(device=device)
        self.device = self.network.device
        # channels-last lets oneDNN (and cuDNN) pick their faster kernels for this network.
        self.backbone = fused_for_inference(self.network.model).to(memory_format=torch.channels_last)
        self.windows = sliding_windows((1.0, *window_scales), window_aspects).to(self.device)
        self.whole_image = int((self.windows == self.windows.new_tensor([0, 0, 1, 1])).all(1).nonzero()[0, 0])
        self.keep_whole_image = keep_whole_image
        self.feature_dim = 1280
        self.num_labels = len(IMAGENET_CLASSES)
        self.label_names = list(IMAGENET_CLASSES)

    # ---- the interface

    def extract_records(self, records: Sequence[dict]) -> list[Regions | Failure]:
        results: list[Regions | Failure | None] = [None] * len(records)
        images, where = [], []
        for i, record in enumerate(records):
            try:
                images.append(decode_image(record["image_bytes"], max_side=2 * self.input_size))
                where.append(i)
            except ValueError as error:
                results[i] = Failure("decode_error", str(error))
        for i, regions in zip(where, self.extract(images)):
            results[i] = regions
        return results

    def extract(self, images: Sequence[Image.Image]) -> list[Regions]:
        """The regions of each image (RGB or convertible), in batches of ``batch_size``."""
        out: list[Regions] = []
        for start in range(0, len(images), self.batch_size):
            out += self._extract_batch(images[start:start + self.batch_size])
        return out

    # ---- the steps

    def _letterbox(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """Canvas batch ``[B, 3, S, S]`` (TF-Lite scaling, zero padding) and each image's extent ``[B, 2]``.

        The extent is the fraction of the canvas width and height the image covers.
        """
        size = self.input_size
        canvas = np.full((len(images), size, size, 3), 127, dtype=np.uint8)  # 127 scales to 0
        extent = np.zeros((len(images), 2), dtype=np.float32)
        for i, image in enumerate(images):
            image = image if image.mode == "RGB" else image.convert("RGB")
            scale = size / max(image.size)
            width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
            resized = image.resize((width, height), Image.Resampling.BICUBIC, reducing_gap=3.0)
            canvas[i, :height, :width] = np.asarray(resized)
            extent[i] = (width / size, height / size)
        batch = torch.from_numpy(canvas).to(self.device).permute(0, 3, 1, 2).float()
        return (batch - 127.0) / 128.0, torch.from_numpy(extent).to(self.device)

    @torch.inference_mode()
    def _extract_batch(self, images: Sequence[Image.Image]) -> list[Regions]:
        if not images:
            return []
        batch, extent = self._letterbox(images)
        batch = batch.contiguous(memory_format=torch.channels_last)
        features = self.backbone.extract_features(batch).float().contiguous()  # [B, 1280, h, w]
        b, c, h, w = features.shape
        logits = self.network.classify_pooled(features.permute(0, 2, 3, 1).reshape(-1, c)).float()
        logits = logits.reshape(b, h, w, -1).permute(0, 3, 1, 2)  # [B, 1000, h, w]
        inside = self._cells_inside(extent, h, w)  # [B, h, w]

        boxes, valid = self._proposals(features, logits, inside, extent)  # [B, P, 4] normalised
        pooled = self._roi_pool(torch.cat([features, logits], dim=1), boxes, extent)  # [B, P, 2280]
        box_features, box_logits = pooled[..., :c], pooled[..., c:]
        probs = torch.softmax(box_logits, dim=-1)
        confidence, labels = probs.max(dim=-1)
        scores = torch.where(valid, confidence, torch.tensor(float("-inf"), device=self.device))
        kept = nms(boxes, scores, self.nms_iou, groups=labels)[:, :self.max_regions]

        results = []
        for i in range(b):
            index = kept[i][kept[i] >= 0]
            if self.keep_whole_image and not (index == self.whole_image).any():
                index = torch.cat([index[:self.max_regions - 1], index.new_tensor([self.whole_image])])
                index = index[torch.sort(scores[i, index], descending=True, stable=True).indices]
            regions = Regions(
                boxes=positions(boxes[i, index].cpu().numpy()),
                features=box_features[i, index].cpu().numpy().astype(np.float16),
                labels=labels[i, index].cpu().numpy().astype(np.int32),
                label_probs=probs[i, index].cpu().numpy().astype(np.float16) if self.with_label_probs else None,
            )
            results.append(regions)
        return results

    def _cells_inside(self, extent: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Which feature-map cells have their centre on the image (not on the padding)."""
        ys = (torch.arange(h, device=self.device) + 0.5) / h
        xs = (torch.arange(w, device=self.device) + 0.5) / w
        return (ys[None, :, None] < extent[:, 1, None, None]) & (xs[None, None, :] < extent[:, 0, None, None])

    def _proposals(self, features: torch.Tensor, logits: torch.Tensor, inside: torch.Tensor,
                   extent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidate boxes ``[B, P, 4]`` in normalised image coordinates and which are real ``[B, P]``."""
        b, _, h, w = features.shape
        windows = self.windows[None].expand(b, -1, -1)
        cam, cam_valid = self._cam_boxes(logits, inside, extent)
        peak, peak_valid = self._peak_boxes(features, inside, extent)
        boxes = torch.cat([windows, cam, peak], dim=1)
        valid = torch.cat([torch.ones(windows.shape[:2], dtype=torch.bool, device=self.device), cam_valid, peak_valid],
                          dim=1)
        boxes = boxes.clamp(0.0, 1.0)
        big_enough = ((boxes[..., 2] - boxes[..., 0]) > 1e-3) & ((boxes[..., 3] - boxes[..., 1]) > 1e-3)
        return boxes, valid & big_enough

    def _cam_boxes(self, logits: torch.Tensor, inside: torch.Tensor,
                   extent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes around the cells that activate each of the image's top classes (CAM localisation)."""
        b, _, h, w = logits.shape
        cells = inside.flatten(1).float()
        image_logits = (logits.flatten(2) * cells[:, None]).sum(-1) / cells.sum(-1, keepdim=True).clamp(min=1)
        top = image_logits.topk(self.cam_classes, dim=1).indices  # [B, k]
        cam = torch.gather(logits, 1, top[:, :, None, None].expand(-1, -1, h, w))  # [B, k, h, w]
        masked_low = cam.masked_fill(~inside[:, None], float("inf")).flatten(2).min(-1).values
        masked_high = cam.masked_fill(~inside[:, None], float("-inf")).flatten(2).max(-1).values
        low, high = masked_low[..., None, None], masked_high[..., None, None]
        level = (cam - low) / (high - low).clamp(min=1e-6)
        thresholds = self.cam_thresholds.to(self.device)[None, None, :, None, None]
        masks = (level[:, :, None] >= thresholds) & inside[:, None, None]  # [B, k, T, h, w]
        masks = masks.flatten(1, 2)  # [B, k*T, h, w]
        return self._mask_bounds(masks, extent)

    def _mask_bounds(self, masks: torch.Tensor, extent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised image box ``[B, M, 4]`` around each cell mask ``[B, M, h, w]``, and non-empty ones."""
        h, w = masks.shape[-2:]
        rows, cols = masks.any(dim=-1), masks.any(dim=-2)  # [B, M, h], [B, M, w]
        row_index = torch.arange(h, device=self.device)
        col_index = torch.arange(w, device=self.device)
        y1 = torch.where(rows, row_index, h).min(-1).values
        y2 = torch.where(rows, row_index, -1).max(-1).values + 1
        x1 = torch.where(cols, col_index, w).min(-1).values
        x2 = torch.where(cols, col_index, -1).max(-1).values + 1
        canvas = torch.stack([x1 / w, y1 / h, x2 / w, y2 / h], dim=-1).float()
        return canvas / extent.repeat(1, 2)[:, None], rows.any(-1)

    def _peak_boxes(self, features: torch.Tensor, inside: torch.Tensor,
                    extent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squares of each of ``peak_sizes`` around the strongest local maxima of the mean activation."""
        b, _, h, w = features.shape
        activation = features.mean(dim=1, keepdim=True)  # [B, 1, h, w]
        local_max = activation == F.max_pool2d(activation, 3, stride=1, padding=1)
        strength = activation.masked_fill(~(local_max & inside[:, None]), float("-inf")).flatten(1)
        k = min(self.peaks, h * w)
        value, index = strength.topk(k, dim=1)
        centre_x = ((index % w).float() + 0.5) / w / extent[:, 0, None]  # normalised image coordinates
        centre_y = ((index // w).float() + 0.5) / h / extent[:, 1, None]
        half = self.peak_sizes.to(self.device)[None, None, :] / 2
        boxes = torch.stack([centre_x[..., None] - half, centre_y[..., None] - half,
                             centre_x[..., None] + half, centre_y[..., None] + half], dim=-1)
        valid = torch.isfinite(value)[..., None].expand(-1, -1, len(self.peak_sizes))
        return boxes.flatten(1, 2), valid.flatten(1)

    def _roi_pool(self, maps: torch.Tensor, boxes: torch.Tensor, extent: torch.Tensor) -> torch.Tensor:
        """Mean of ``s x s`` bilinear samples inside each box: ``[B, P, C]`` from maps ``[B, C, h, w]``.

        The sample points sit at the centres of an ``s x s`` grid of bins over the box (RoIAlign's
        ``aligned`` convention: a cell's centre is at canvas position ``(i + 0.5) / h``), each read by
        bilinear interpolation with coordinates clamped to the map (like ``grid_sample`` with
        ``padding_mode="border"``). Bilinear weights factor into a row weight times a column weight
        and the sample grid is a product of s rows and s columns, so the mean of the samples is
        ``rows^T map cols``: one batched matrix product with the weights ``[B, P, h*w]`` instead of
        gathering ``s*s`` points of every channel (the same numbers, about 30 times faster on CPU).
        """
        h, w = maps.shape[-2:]
        rows = self._axis_weights(boxes[..., 1], boxes[..., 3], extent[:, 1], h)  # [B, P, h]
        cols = self._axis_weights(boxes[..., 0], boxes[..., 2], extent[:, 0], w)  # [B, P, w]
        weights = (rows[..., :, None] * cols[..., None, :]).flatten(2)  # [B, P, h*w]
        return torch.bmm(weights, maps.flatten(2).transpose(1, 2))  # [B, P, C]

    def _axis_weights(self, start: torch.Tensor, stop: torch.Tensor, extent: torch.Tensor, cells: int) -> torch.Tensor:
        """Per box, each cell's mean linear-interpolation weight over the box's ``s`` sample positions on one axis."""
        s = self.samples_per_side
        steps = (torch.arange(s, device=self.device, dtype=torch.float32) + 0.5) / s  # [s]
        canvas = (start[..., None] + (stop - start)[..., None] * steps) * extent[:, None, None]  # [B, P, s]
        position = (canvas * cells - 0.5).clamp(0, cells - 1)  # in cell-index units
        index = torch.arange(cells, device=self.device, dtype=torch.float32)
        weight = (1 - (position[..., None] - index).abs()).clamp(min=0)  # [B, P, s, cells]
        return weight.mean(dim=2)
