"""Personalized Clustering (how many clusters an edge merges) and Personalized Epoch (when it stops training).

Personalized Update, the third part of FedUReID, is the cloud's model mixing: `reid_core.federation.aggregation`.
"""
