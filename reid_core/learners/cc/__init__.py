"""Cluster-contrast at the edge (`learner=cc`): k-reciprocal Jaccard + DBSCAN pseudo-labels, cluster memory.

After Dai et al., "Cluster Contrast for Unsupervised Person Re-Identification" (ACCV 2022):
before every local epoch the edge clusters its current features (sparse Jaccard distance
over a FAISS k-NN graph, then scikit-learn's DBSCAN), builds one centroid per cluster and
trains with ClusterNCE on identity-balanced batches. Outliers sit that epoch out.
"""
