"""Keras encoders and students. Models hold only the model; objectives live in edge_ssl.methods."""
