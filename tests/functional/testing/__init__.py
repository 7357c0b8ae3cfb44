"""The pytest plugin and the helpers of ``lambda_flow.testing``."""
