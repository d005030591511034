"""What the CLI draws: live progress (``progress``) and the benchmark's tables and documents (``bench``).

The services report through small protocols (``BuildProgress``, ``BenchProgress``, ``RunProgress``)
and return records; everything rich lives here or in ``host.report``'s renderers, and every
figure is written by ``host.report._format``.
"""
