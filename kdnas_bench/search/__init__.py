"""KD-NAS search: reward, strategies, evaluators, executors and the study that coordinates them."""
