"""torchreid_dense.engine"""
