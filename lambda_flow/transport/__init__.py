"""How jobs and timers move between orchestration passes and step workers."""
