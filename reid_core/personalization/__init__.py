"""The three FedUReID parts, one module each: Personalized Clustering, Personalized Epoch, Personalized Update."""
