"""Landmark face stage: BlazeFace + face mesh + eyelid model (LiteRT), head pose, eyes,
aligned crops."""

from engine.landmarks.geometry import LandmarkSettings, head_pose, lid_openness
from engine.landmarks.stage import LandmarkFace, LandmarkStage

__all__ = ["LandmarkFace", "LandmarkSettings", "LandmarkStage", "head_pose", "lid_openness"]
