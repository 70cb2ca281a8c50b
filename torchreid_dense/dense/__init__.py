"""torchreid_dense.dense"""
