"""The Docker-free local runtime."""
