"""Fitting many takes on a Ray cluster (``facecap batch``): a manifest of takes, each split into chunks fitted
as Ray tasks from the performer's actor profile, stitched and published take by take.

Only :mod:`facecap.batch.runner` needs Ray (``pip install 'facecap[batch]'``), and it imports Ray when a
batch runs: the rest of facecap never does.
"""
