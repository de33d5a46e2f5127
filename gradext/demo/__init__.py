"""``python -m gradext demo``: latent-variable models trained on real data with gradext's ops,
beside the same models on plain PyTorch ops (gradext.reference)."""
