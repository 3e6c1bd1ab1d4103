"""Using a trained model: rank a gallery folder for query images, draw retrieval examples."""
