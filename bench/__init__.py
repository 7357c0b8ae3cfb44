"""lambda-flow's benchmarks: ``python -m bench [BENCHMARK] [options]`` (see ``bench/README.md``)."""
