"""pytest plugin for the floors job: `jax.enable_x64` on jax releases that lack it.

The tests switch to 64-bit floats with the ``jax.enable_x64`` context manager, public since
jax 0.8.0; older releases have the same context manager as ``jax.experimental.enable_x64``.
"""

import jax

if not hasattr(jax, "enable_x64"):
    from jax.experimental import enable_x64

    jax.enable_x64 = enable_x64
