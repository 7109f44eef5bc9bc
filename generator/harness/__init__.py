"""Build, run, probe and tear down a generated project with a real Docker engine.

``servegen test DIR`` enters through :func:`generator.harness.runner.run`, which builds
one :class:`~generator.harness.context.RunContext` after preflight and hands it to each
step. Each job lives in its own small module (preflight, lint, wheelhouse, build,
overlay, demo_model, stack, containers, readiness, probes, teardown, report) so that
tests can call it directly; loopback (HTTP to the app) and proc (child processes, the
last line of a log) are shared by them and by the benchmarks.
"""
