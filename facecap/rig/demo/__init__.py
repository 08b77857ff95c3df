"""Parts of the built-in demo head (see :mod:`facecap.rig.demo_head`)."""
