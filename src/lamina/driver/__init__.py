"""lamina.driver: put layers on disk and mount a chain of them as one rootfs.

``open_driver`` (in :mod:`lamina.driver.select`) picks ``overlay2`` or ``vfs``; both meet the
:class:`~lamina.driver.base.Driver` protocol.
"""
