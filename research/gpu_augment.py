"""GPU augmentation for ``gpu_search.py`` and ``gpu_distil.py``: ``engine.training.augment``'s
framing ranges, gamma, blur, low resolution, sensor noise and an 8×8-DCT quantisation standing
in for JPEG, on whole batches of (N, 1, 48, 48) float faces at once."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SIDE = 48


def _dct_matrix(device: torch.device) -> torch.Tensor:
    k = torch.arange(8, dtype=torch.float32, device=device)
    m = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m


_JPEG_LUMA = torch.tensor(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=torch.float32,
)


def augment(x: torch.Tensor, degrade: bool, gen: torch.Generator) -> torch.Tensor:
    """GPU version of engine.training.augment: (N, 1, 48, 48) float 0–255 → same, re-framed."""
    n, dev = x.shape[0], x.device

    def uniform(lo: float, hi: float, size: int = n) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(size, device=dev, generator=gen)

    scale = uniform(0.85, 1.15)
    angle = uniform(-10.0, 10.0) * math.pi / 180
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, uniform(-0.2, 0.2)], dim=1),
            torch.stack([sin, cos, uniform(-0.2, 0.2)], dim=1),
        ],
        dim=1,
    )
    flip = torch.rand(n, device=dev, generator=gen) < 0.5
    theta[flip, 0, :2] *= -1  # mirror: sample x from -x
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if not degrade:
        return x.round().clamp(0, 255)
    gamma = torch.exp(uniform(-0.4, 0.4)).view(n, 1, 1, 1)
    x = 255.0 * (x.clamp(0, 255) / 255.0) ** gamma
    # Blur: per-face Gaussian, sigma 0.3–1.0, on a quarter of the faces.
    pick = torch.rand(n, device=dev, generator=gen) < 0.25
    if pick.any():
        sigma = uniform(0.3, 1.0, int(pick.sum())).view(-1, 1)
        taps = torch.arange(-2, 3, device=dev, dtype=torch.float32).view(1, -1)
        kernel = torch.exp(-(taps**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum(dim=1, keepdim=True)
        sub = x[pick].transpose(0, 1)  # (1, k, 48, 48): one group per face
        sub = F.conv2d(
            F.pad(sub, (2, 2, 0, 0), mode="replicate"), kernel.view(-1, 1, 1, 5), groups=len(kernel)
        )
        sub = F.conv2d(
            F.pad(sub, (0, 0, 2, 2), mode="replicate"), kernel.view(-1, 1, 5, 1), groups=len(kernel)
        )
        x[pick] = sub.transpose(0, 1)
    # Lower resolution scaled back up, on a fifth of the faces.
    pick = torch.rand(n, device=dev, generator=gen) < 0.2
    sizes = torch.randint(20, 36, (n,), device=dev, generator=gen)
    for size in sizes[pick].unique().tolist():
        rows = pick & (sizes == size)
        small = F.interpolate(x[rows], size=(size, size), mode="area")
        x[rows] = F.interpolate(small, size=(SIDE, SIDE), mode="bilinear", align_corners=False)
    # Sensor noise, sigma 2–8, on 30 %.
    pick = (torch.rand(n, device=dev, generator=gen) < 0.3).view(n, 1, 1, 1)
    noise = torch.randn(x.shape, device=dev, generator=gen) * uniform(2.0, 8.0).view(n, 1, 1, 1)
    x = torch.where(pick, x + noise, x).round().clamp(0, 255)
    # JPEG-like 8×8 DCT quantisation at quality 25–85, on 30 %.
    pick = torch.rand(n, device=dev, generator=gen) < 0.3
    if pick.any():
        quality = uniform(25, 85, int(pick.sum()))
        factor = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality) / 100
        table = (_JPEG_LUMA.to(dev)[None] * factor.view(-1, 1, 1)).clamp(1, 255).round()
        d = _dct_matrix(dev)
        blocks = (x[pick][:, 0] - 128).unfold(1, 8, 8).unfold(2, 8, 8)  # (k, 6, 6, 8, 8)
        coef = d @ blocks @ d.T
        coef = (coef / table[:, None, None]).round() * table[:, None, None]
        back = (d.T @ coef @ d + 128).permute(0, 1, 3, 2, 4).reshape(-1, SIDE, SIDE)
        x[pick] = back.unsqueeze(1).round().clamp(0, 255)
    return x
