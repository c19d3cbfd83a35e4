"""Shared pytest set-up: quiet TensorFlow, headless MuJoCo."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('MUJOCO_GL', 'egl')
