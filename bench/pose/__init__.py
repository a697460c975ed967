"""Head pose (yaw, pitch, roll) for every image: from metadata, landmarks (PnP) or the image."""

from __future__ import annotations

from .pnp import PoseFit, camera_matrices, estimate_pose

__all__ = ["PoseFit", "estimate_pose", "camera_matrices"]
