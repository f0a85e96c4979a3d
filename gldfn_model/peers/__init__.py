"""The blind-SR networks GLDFN's Table IV compares against (DANv1, DANv2, DCLS), rebuilt from their public
architecture definitions with random weights: for counting, timing and deployability, not for image quality.

``build_network`` builds any of the four Table IV networks by name (GLDFN from one of its named configs).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gldfn_model.common.errors import GldfnError
from gldfn_model.common.suggest import did_you_mean

if TYPE_CHECKING:  # torch is imported by the builders only: `gldfn --help` lists MODEL_NAMES without it
    from torch import nn

MODEL_NAMES = ("gldfn", "dcls", "danv1", "danv2")


class PeerError(GldfnError, ValueError):
    """A network name that is not one of Table IV's four, or a setting the peers are not defined for."""


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    table_iv_name: str  # the row of Table IV (gldfn_model.network.complexity.TABLE_IV)
    source: str  # where the architecture comes from


SPECS = {
    "gldfn": NetworkSpec("gldfn", "GLDFN", "this project (docs/architecture.md)"),
    "dcls": NetworkSpec("dcls", "DCLS", "megvii-research/DCLS-SR codes/config/DCLS/models/modules/dcls_arch.py, "
                                        "options/setting1/test/test_setting1_x4.yml"),
    "danv1": NetworkSpec("danv1", "DANv1", "greatlog/DAN codes/config/DANv1/models/modules/dan_arch.py, "
                                           "options/setting1/test/test_setting1_x4.yml"),
    "danv2": NetworkSpec("danv2", "DANv2", "greatlog/DAN codes/config/DANv2/models/modules/dan_arch.py, "
                                           "options/setting1/test/test_setting1_x4.yml"),
}


def parse_models(text: str) -> list[str]:
    """'gldfn,dcls' -> ['gldfn', 'dcls'], in the given order, without repeats."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SPECS]
    if not names or unknown:
        hint = did_you_mean(unknown[0], MODEL_NAMES) if unknown else ""
        raise PeerError(f"{text!r}: choose from {', '.join(MODEL_NAMES)} (comma-separated for several){hint}")
    return list(dict.fromkeys(names))


def build_network(name: str, scale: int = 4, gldfn_config: str = "paper") -> nn.Module:
    """A Table IV network with fresh random weights (seed them with torch.manual_seed). Build it under
    ``torch.device("meta")`` to count it without allocating or computing anything."""
    if name not in SPECS:
        raise PeerError(f"unknown network {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    if name == "gldfn":
        from gldfn_model.network.config import get_config
        from gldfn_model.network.gldfn import GLDFN

        return GLDFN(get_config(gldfn_config, scale))
    if scale not in (2, 3, 4):
        raise PeerError(f"scale {scale} is not supported by the peer networks (2, 3 or 4)")
    if name == "dcls":
        from gldfn_model.peers.dcls import DCLS, DCLSConfig

        return DCLS(DCLSConfig(scale=scale))
    from gldfn_model.peers.dan import DANV1, DANV2, DANv1, DANv2

    return DANv1(replace(DANV1, scale=scale)) if name == "danv1" else DANv2(replace(DANV2, scale=scale))
