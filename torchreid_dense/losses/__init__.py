"""torchreid_dense.losses"""
