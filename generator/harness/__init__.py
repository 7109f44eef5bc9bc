"""Build, run, probe and tear down a generated project with a real Docker engine.

``servegen test DIR`` enters through :func:`generator.harness.runner.run`. Each step lives
in its own small module (preflight, lint, wheelhouse, build, overlay, stack, probes,
teardown, report) so that tests can call it directly.
"""
