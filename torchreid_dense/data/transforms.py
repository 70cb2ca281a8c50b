"""The image transform of inference: torchreid's test transform (resize, to [0, 1], normalise)."""
from torchvision import transforms as T

__all__ = ["build_image_transform"]


def build_image_transform(height, width, norm_mean, norm_std):
    """torchreid's test transform: resize to ``(height, width)``, to [0, 1], normalise."""
    return T.Compose([T.Resize((int(height), int(width))), T.ToTensor(),
                      T.Normalize(mean=list(norm_mean), std=list(norm_std))])
