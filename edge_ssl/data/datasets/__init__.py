"""TFDS builders of edge_ssl. TFDS needs each builder module inside a package, hence this one.

Importing a builder module (e.g. `edge_ssl.data.datasets.synthetic_world`) registers it with TFDS; a prepared dataset
loads without it through `tfds.builder_from_directory`.
"""
