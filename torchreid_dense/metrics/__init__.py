"""torchreid_dense.metrics"""
