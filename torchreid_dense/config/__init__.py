"""torchreid_dense.config"""
