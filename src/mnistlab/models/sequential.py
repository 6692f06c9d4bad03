from collections import OrderedDict

from torch import nn


class SequentialNet(nn.Sequential):
    """A net that is a sequence of layers built from its settings (MLP, CNN).

    A slice of it is a plain ``nn.Sequential`` of those layers: ``nn.Sequential`` would call this class with
    the layers instead of its settings.
    """

    def __getitem__(self, index: int | slice) -> nn.Module:
        if isinstance(index, slice):
            return nn.Sequential(OrderedDict(list(self._modules.items())[index]))
        return super().__getitem__(index)
