"""torchreid_dense.models"""
