"""torchreid_dense.utils"""
