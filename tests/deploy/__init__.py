"""Checks of the deployable pieces: template.yaml, infra/, samconfig.toml, events/, the build."""
