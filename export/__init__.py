"""export: everything between a trained model and a device (converters, engines, lint, parity, benchmark).

Imports model code from edge_ssl.models and never anything from training, so it can be installed on the device alone.
"""
