"""Landmark face stage: BlazeFace + face mesh (OpenCV dnn), head pose, eyes, aligned crops."""

from engine.landmarks.geometry import LandmarkSettings, eye_aspect_ratio, head_pose
from engine.landmarks.stage import LandmarkFace, LandmarkStage

__all__ = ["LandmarkFace", "LandmarkSettings", "LandmarkStage", "eye_aspect_ratio", "head_pose"]
