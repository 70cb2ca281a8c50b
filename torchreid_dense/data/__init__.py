"""torchreid_dense.data"""
